from __future__ import annotations

import pytest
from channels.db import database_sync_to_async
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from conversations import services


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    """Each test's files in a folder of its own."""
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture(autouse=True)
def _each_test_has_its_own_channel_layer(isolated_channel_layer):
    return isolated_channel_layer


@pytest.fixture
def conversation(owner, personas, model_server):
    """A conversation of `owner` whose replies come from the simulator."""
    return services.start_conversation(user=owner)


@database_sync_to_async
def uploaded(user, conversation, name: str, data: bytes) -> int:
    """Upload a file to `conversation` as `user` does from the page; its id."""
    client = Client()
    client.force_login(user)
    url = reverse("upload_attachment", args=[conversation.pk])
    response = client.post(url, {"file": SimpleUploadedFile(name, data)})
    assert response.status_code == 201, response.content
    return response.json()["id"]
