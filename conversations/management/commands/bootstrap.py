"""Make a fresh installation usable: starter personas, an admin account, no orphaned replies."""

from __future__ import annotations

import os
import secrets
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand

from conversations.services import sweep_orphaned_replies
from conversations.starter import ensure_starter_personas


class Command(BaseCommand):
    help = "Create the starter personas and an admin account where missing; sweep dead replies."

    def handle(self, *args: Any, **options: Any) -> None:
        created = ensure_starter_personas()
        if created:
            names = ", ".join(persona.name for persona in created)
            self.stdout.write(f"Created the starter personas: {names}")
        self.ensure_admin()
        swept = sweep_orphaned_replies()
        if swept:
            self.stdout.write(f"Marked {swept} replies of a stopped server as interrupted.")

    def ensure_admin(self) -> None:
        User = get_user_model()
        if User.objects.filter(is_superuser=True).exists():
            return
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip() or "admin"
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
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
        if generated:
            self.stdout.write(f"  password: {password}")
            self.stdout.write("  (shown once; change it at /admin/password_change/)")
        else:
            self.stdout.write("  password: the one in DJANGO_SUPERUSER_PASSWORD")
        self.stdout.write(bar)
