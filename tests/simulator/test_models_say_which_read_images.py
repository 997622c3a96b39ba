"""`/v1/models` lists a few models, and says which of them read images as OpenRouter does."""

from __future__ import annotations

from openai import AsyncOpenAI

from simulator import SimulatorServer


async def test_a_vision_model_is_listed_with_image_input(client: AsyncOpenAI):
    cards = {model.id: model.to_dict() for model in (await client.models.list()).data}

    assert cards["sim-vision"]["architecture"] == {"input_modalities": ["text", "image"]}
    assert cards["sim-1"]["architecture"] == {"input_modalities": ["text"]}
    assert len(cards) >= 3


async def test_the_vision_models_are_configured_at_run_time(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.vision_models = ["sim-1"]

    card = (await client.models.retrieve("sim-1")).to_dict()

    assert card["architecture"]["input_modalities"] == ["text", "image"]


async def test_cards_can_hold_only_ids_as_most_servers_send(
    client: AsyncOpenAI, simulator: SimulatorServer
):
    simulator.config.describe_models = False

    cards = [model.to_dict() for model in (await client.models.list()).data]

    assert all(set(card) == {"id", "object", "created", "owned_by"} for card in cards)
