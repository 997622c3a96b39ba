"""Accounts made before django-allauth: their email addresses enter allauth's table.

allauth looks an address up in its own table (`account_emailaddress`, lower case) before the
user's `email` field, which it compares exactly: without this, someone whose address was
stored as `Bob@example.com` could not log in as `bob@example.com`, and a password reset or an
email confirmation would not find them. Each becomes the primary, unverified address of its
account (nobody ever confirmed it); with EMAIL_VERIFICATION=mandatory its owner is asked to.
"""

from __future__ import annotations

from django.conf import settings
from django.db import migrations


def copy_emails(apps, schema_editor):
    User = apps.get_model(*settings.AUTH_USER_MODEL.split("."))
    EmailAddress = apps.get_model("account", "EmailAddress")
    known = set(EmailAddress.objects.values_list("user_id", flat=True))
    EmailAddress.objects.bulk_create(
        [
            EmailAddress(user_id=user_id, email=email.lower(), primary=True, verified=False)
            for user_id, email in User.objects.exclude(email="").values_list("pk", "email")
            if user_id not in known
        ],
        batch_size=1000,
    )


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0006_persona_example_prompts"),
        ("account", "0009_emailaddress_unique_primary_email"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [migrations.RunPython(copy_emails, migrations.RunPython.noop)]
