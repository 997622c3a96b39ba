"""Make a fresh installation usable: starter personas, an admin account, no orphaned replies."""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from conversations import catalog
from conversations.llm import ModelError
from conversations.models import ChatModel
from conversations.services import sweep_orphaned_replies
from conversations.starter import ensure_starter_personas


def operator_language() -> str:
    """The language of the person running the command, from their locale (LC_ALL, LC_MESSAGES,
    LANG, as gettext reads them): Korean for a Korean locale, else the site's default."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name, "")
        if value:
            return "ko" if value.lower().startswith("ko") else "en"
    return settings.LANGUAGE_CODE


# How long a first start waits for the model server's list of models: a server that is not
# up yet must not hold up the start.
FIRST_SYNC_TIMEOUT = 5.0


class Command(BaseCommand):
    help = (
        "Create the starter personas and an admin account where missing; fill an empty model "
        "list from the model server; sweep dead replies."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--password-file",
            help="Write a generated admin password to this file (readable by its owner only) "
            "instead of printing it: under systemd what is printed stays in the journal.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_starter_personas()
        if created:
            language = operator_language()
            names = ", ".join(persona.display_name(language) for persona in created)
            self.stdout.write(f"Created the starter personas: {names}")
        self.ensure_admin(options.get("password_file"))
        self.fill_model_list()
        swept = sweep_orphaned_replies()
        if swept:
            self.stdout.write(f"Marked {swept} replies of a stopped server as interrupted.")

    def fill_model_list(self) -> None:
        """An empty model list is filled once, so a new user finds models in the picker; a
        server that does not answer leaves it empty (any model name is then accepted) with a
        note, and the start goes on."""
        if ChatModel.objects.exists():
            return
        try:
            result = catalog.sync_models(timeout=FIRST_SYNC_TIMEOUT)
        except ModelError as exc:
            self.stdout.write(
                f"The model list is empty: {exc.message} Fill it later with "
                "`python manage.py sync_models` or the Refresh button of the admin's model list."
            )
            return
        self.stdout.write(f"Filled the model list. {result.summary()}")

    def ensure_admin(self, password_file: str | None = None) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip() or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
            if password_file:
                self.write_password(Path(password_file), username, password)
        if User.objects.filter(username=username).exists():
            user = User.objects.get(username=username)
            user.is_staff = user.is_superuser = True
            user.set_password(password)
            user.save()
        else:
            User.objects.create_superuser(username=username, email=email, password=password)
        bar = "=" * 60
        self.stdout.write(bar)
        self.stdout.write(self.style.SUCCESS("An admin account was created."))
        self.stdout.write(f"  username: {username}")
        if generated and password_file:
            self.stdout.write(f"  password: in {password_file} (readable by its owner only)")
        elif generated:
            self.stdout.write(f"  password: {password}")
            self.stdout.write("  (shown once; change it at /accounts/password/change/)")
        else:
            self.stdout.write("  password: the one in DJANGO_SUPERUSER_PASSWORD")
        self.stdout.write(bar)

    def write_password(self, path: Path, username: str, password: str) -> None:
        """The password in a new file only its owner may read: created so, never widened."""
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        except OSError as exc:
            raise CommandError(f"Cannot write the admin password to {path}: {exc}") from None
        with os.fdopen(descriptor, "w") as file:
            os.fchmod(file.fileno(), 0o600)
            file.write(f"username: {username}\npassword: {password}\n")
