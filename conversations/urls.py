from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/new/", views.new_conversation, name="new_conversation"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
]
