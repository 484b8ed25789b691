from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

admin.site.site_header = "GPU Procurement Tracker"
admin.site.site_title = "GPU Procurement Tracker"
admin.site.index_title = "Purchase orders, delivery quotes and receipts"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Login on the project's own layout; logging out (a POST) lands back on it.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("orders.urls")),
]
