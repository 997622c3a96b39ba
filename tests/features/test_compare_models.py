"""Compare puts models side by side: one persona, two to four models of the model list, each
column a conversation of its own whose answer that model writes."""

from __future__ import annotations

import pytest
from asgiref.sync import ThreadSensitiveContext
from channels.db import database_sync_to_async
from django.test import AsyncClient
from django.urls import reverse

from conversations import replies
from conversations.models import ChatModel, Conversation, Message, Role

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def model_list(db):
    ChatModel.objects.create(name="sim-1", label="Simulator")
    ChatModel.objects.create(name="sim-vision", label="Simulator vision")
    ChatModel.objects.create(name="gpt-4o", is_enabled=False)


async def logged_in(user) -> AsyncClient:
    client = AsyncClient()
    await database_sync_to_async(client.force_login)(user)
    return client


def by_models(persona, *models: str) -> dict:
    return {"mode": "models", "persona": persona.pk, "models": list(models), "prompt": "Hi"}


@pytest.mark.usefixtures("isolated_channel_layer")
async def test_each_column_is_answered_by_its_model(
    owner, default_persona, model_list, model_server
):
    client = await logged_in(owner)

    async with ThreadSensitiveContext():
        response = await client.post(
            reverse("start_compare"), by_models(default_persona, "sim-1", "sim-vision")
        )
    assert response.status_code == 302
    await replies.wait_for_replies()

    answers = await database_sync_to_async(list)(
        Message.objects.filter(conversation__user=owner, role=Role.ASSISTANT).order_by("model")
    )
    assert [m.model for m in answers] == ["sim-1", "sim-vision"]
    assert sorted(r["model"] for r in model_server.config.requests) == ["sim-1", "sim-vision"]
    titles = await database_sync_to_async(list)(
        Conversation.objects.filter(user=owner).values_list("title", flat=True)
    )
    assert sorted(t.split(" · ")[1] for t in titles) == ["Simulator", "Simulator vision"]
    page = (await client.get(response["Location"])).content.decode()
    assert '<span class="column-model">sim-vision</span>' in page


@pytest.mark.parametrize(
    ("models", "error"),
    [
        (["sim-1"], "Choose 2 to 4 models."),
        (["sim-1", "gpt-4o"], "switched off"),
        (["sim-1", "gpt-9"], "does not offer"),
    ],
)
@pytest.mark.usefixtures("isolated_channel_layer")
async def test_the_form_refuses_models_users_may_not_have(
    owner, default_persona, model_list, model_server, models, error
):
    client = await logged_in(owner)

    response = await client.post(reverse("start_compare"), by_models(default_persona, *models))

    assert response.status_code == 400
    assert error in response.content.decode()
    assert await Conversation.objects.acount() == 0
    assert model_server.config.request_count == 0


def test_the_form_offers_the_usable_models(client, owner, default_persona, model_list):
    client.force_login(owner)

    html = client.get(reverse("compare")).content.decode()

    assert "One persona with several models" in html
    assert 'value="sim-vision"' in html and "Simulator vision" in html
    assert 'value="gpt-4o"' not in html
