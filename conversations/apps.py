from __future__ import annotations

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ConversationsConfig(AppConfig):
    name = "conversations"
    verbose_name = _("Conversations")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Connects the signal that deletes an attachment's file with its row, and those that
        # close the chat sockets of a session that ended.
        from . import accounts, attachments  # noqa: F401
