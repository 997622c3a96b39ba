"""The usage ledger filled from the replies that exist: each reply made here gets its row.

Before the ledger, `ModelCall` held only who called and when, and the tokens lived on the
replies. A call and its reply were written with the same time (`started_at` is the reply's
`created_at`), so each reply is matched to an unclaimed call of its owner at that moment, and
the call takes the reply's tokens, model, status and conversation. A reply with no such call
(made before calls were recorded) gets a new row. Calls whose reply was already deleted keep
no tokens: what they used is lost, and nothing here can make it up. Imported replies get none:
their tokens were never spent here.
"""

from __future__ import annotations

from collections import defaultdict

from django.db import migrations

BATCH = 1000


def fill_ledger(apps, schema_editor):
    Message = apps.get_model("conversations", "Message")
    ModelCall = apps.get_model("conversations", "ModelCall")
    unclaimed: dict[tuple[int, object], list[int]] = defaultdict(list)
    for pk, user_id, started_at in (
        ModelCall.objects.filter(reply__isnull=True)
        .order_by("pk")
        .values_list("pk", "user_id", "started_at")
    ):
        unclaimed[(user_id, started_at)].append(pk)
    replies = (
        Message.objects.filter(role="assistant", imported=False, model_call__isnull=True)
        .select_related("conversation")
        .order_by("pk")
    )
    calls, linked = [], []
    for reply in replies.iterator(chunk_size=BATCH):
        user_id = reply.conversation.user_id
        waiting = unclaimed.get((user_id, reply.created_at))
        call = ModelCall(
            pk=waiting.pop(0) if waiting else None,
            user_id=user_id,
            started_at=reply.created_at,
            conversation_id=reply.conversation_id,
            model=reply.model,
            prompt_tokens=reply.prompt_tokens,
            completion_tokens=reply.completion_tokens,
            estimated=reply.usage_estimated,
            status="" if reply.status == "streaming" else reply.status,
            ended_at=reply.completed_at,
        )
        calls.append(call)
        linked.append(reply)
    fields = [
        "conversation_id",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "estimated",
        "status",
        "ended_at",
    ]
    ModelCall.objects.bulk_update([c for c in calls if c.pk], fields, batch_size=BATCH)
    new = [c for c in calls if not c.pk]
    ModelCall.objects.bulk_create(new, batch_size=BATCH)
    for reply, call in zip(linked, calls, strict=True):
        reply.model_call_id = call.pk
    Message.objects.bulk_update(linked, ["model_call"], batch_size=BATCH)


class Migration(migrations.Migration):
    dependencies = [("conversations", "0009_usage_ledger")]

    operations = [migrations.RunPython(fill_ledger, migrations.RunPython.noop)]
