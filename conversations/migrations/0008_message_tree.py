"""A conversation becomes a tree of messages (`conversations.tree`).

Each existing message follows the one before it in its conversation, so every conversation
is one path, as it was; each counts as chosen when it was written.
"""

import django.db.models.deletion
import django.utils.timezone
from django.db import migrations, models
from django.db.models import F, OuterRef, Subquery


def link_in_order(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    previous = (
        Message.objects.filter(conversation_id=OuterRef("conversation_id"), id__lt=OuterRef("id"))
        .order_by("-id")
        .values("id")[:1]
    )
    # One statement whatever the number of rows, on SQLite and PostgreSQL alike; the inner
    # query walks the (conversation, id) index.
    Message.objects.update(parent_id=Subquery(previous), selected_at=F("created_at"))


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0007_account_emails"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="parent",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="children",
                to="conversations.message",
                verbose_name="parent",
            ),
        ),
        migrations.AddField(
            model_name="message",
            name="selected_at",
            field=models.DateTimeField(default=django.utils.timezone.now, verbose_name="chosen"),
        ),
        migrations.RunPython(link_in_order, migrations.RunPython.noop, elidable=False),
    ]
