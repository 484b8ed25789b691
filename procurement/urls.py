from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

admin.site.site_header = "GPU Procurement Tracker"
admin.site.site_title = "GPU Procurement Tracker"
admin.site.index_title = "Purchase orders, delivery quotes and receipts"

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("admin/", admin.site.urls),
]
