from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.chat, name="chat"),
    path("c/new/", views.new_conversation, name="new_conversation"),
    path("c/list/", views.conversation_list, name="conversation_list"),
    path("c/<uuid:conversation_id>/", views.conversation, name="conversation"),
    path("c/<uuid:conversation_id>/messages/", views.older_messages, name="older_messages"),
    path("c/<uuid:conversation_id>/rename/", views.rename, name="rename_conversation"),
    path("c/<uuid:conversation_id>/pin/", views.pin, name="pin_conversation"),
    path("c/<uuid:conversation_id>/delete/", views.delete, name="delete_conversation"),
    path("c/<uuid:conversation_id>/settings/", views.update_settings, name="conversation_settings"),
]
