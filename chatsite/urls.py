from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from chatsite.health import healthz
from conversations import views
from conversations.accounts import LoginView, ThrottledAdminAuthenticationForm

# The admin's login page counts failures with the same throttle as the site's.
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("conversations.urls")),
]
