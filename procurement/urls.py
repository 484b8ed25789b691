from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

admin.site.site_header = "GPU Procurement Tracker"
admin.site.site_title = "GPU Procurement Tracker"
admin.site.index_title = "Purchase orders, delivery quotes and receipts"
# The index lists every model; the sidebar repeating it would take a fifth of a laptop's
# width from the order list.
admin.site.enable_nav_sidebar = False


def favicon(request: HttpRequest) -> HttpResponse:
    """Browsers ask for /favicon.ico before reading a page's icon link (and for the JSON and
    CSV answers, which have none): send them to the static icon."""
    return redirect(static("favicon.svg"))


urlpatterns = [
    path("favicon.ico", favicon),
    path("admin/", admin.site.urls),
    # Login on the project's own layout; logging out (a POST) lands back on it.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", include("orders.urls")),
]
