from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.templatetags.static import static
from django.urls import include, path

from procurement.accounts import PasswordResetView

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
    # Setting a password by email (procurement.accounts). The name admin_password_reset is
    # what makes the admin's login page show its link; the others are Django's defaults.
    path("accounts/password-reset/", PasswordResetView.as_view(), name="admin_password_reset"),
    path(
        "accounts/password-reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password-reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("", include("orders.urls")),
]
