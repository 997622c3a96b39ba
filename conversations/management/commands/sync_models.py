"""Fill the admin's model list from the model server's `/v1/models`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from conversations import catalog
from conversations.llm import ModelError


class Command(BaseCommand):
    help = (
        "Fill the admin's model list from the model server's /v1/models: new models are "
        "added, models no longer listed are marked so; what the admin set is kept."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = catalog.sync_models()
        except ModelError as exc:
            raise CommandError(f"The model list was not refreshed: {exc.message}") from None
        self.stdout.write(self.style.SUCCESS(result.summary()))
