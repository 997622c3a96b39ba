from __future__ import annotations

from allauth.account import views as allauth_views
from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.urls import include, path
from django.views.decorators.http import require_POST

from chatsite.health import healthz
from conversations import accounts, views

# The admin's login page is a second door to the same passwords: it sends people to the
# site's login (rate-limited, and single sign-on only when PASSWORD_LOGIN=0) instead.
admin.site.login = secure_admin_login(admin.site.login)  # type: ignore[method-assign]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("admin/", admin.site.urls),
    # The CONTRACT's addresses, served by allauth's views (conversations/accounts.py).
    path("accounts/login/", accounts.login, name="login"),
    path("accounts/logout/", require_POST(allauth_views.logout), name="logout"),
    path("accounts/signup/", accounts.signup, name="signup"),
    # A new password closes the chat tabs of the user's other sessions, not this one's.
    path("accounts/password/change/", accounts.password_change, name="account_change_password"),
    path("accounts/password/set/", accounts.password_set, name="account_set_password"),
    path("accounts/", include("allauth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("conversations.urls")),
]
