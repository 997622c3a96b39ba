from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from conversations import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("i18n/", include("django.conf.urls.i18n")),
    path("", include("conversations.urls")),
]
