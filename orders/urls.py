"""The buyer dashboard pages, at the site root (the admin stays at /admin/)."""

from django.urls import path

from orders import views

app_name = "orders"

urlpatterns = [
    path("", views.DashboardView.as_view(), name="dashboard"),
    path("slipping-orders.csv", views.dashboard_csv, name="dashboard_csv"),
    path("lead-times/", views.LeadTimesView.as_view(), name="lead_times"),
    path("prices/", views.PricesView.as_view(), name="prices"),
    path("vendors/", views.VendorsView.as_view(), name="vendors"),
    path("orders/<int:pk>/timeline/", views.OrderTimelineView.as_view(), name="order_timeline"),
]
