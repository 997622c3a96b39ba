"""Checking a chat-completions body the way OpenAI does, before the model runs.

The app under test must handle OpenAI's 400s; rejecting the same inputs with the same
``param``/``code`` keeps the simulator from being more forgiving than the real service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .conversation import image_size, image_urls, message_text
from .errors import ApiError, model_not_found
from .tokens import MAX_TOP_LOGPROBS

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
JSON_WORD_REQUIRED = (
    "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
    "'json_object'."
)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_error(param: str, expected: str, value: object) -> ApiError:
    names = {str: "a string", bool: "a boolean", list: "an array", dict: "an object"}
    got = names.get(type(value), "a number" if _is_number(value) else type(value).__name__)
    return ApiError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {got} instead.",
        param=param,
        code="invalid_type",
    )


def _check_range(param: str, value: object, low: float, high: float, integer: bool) -> None:
    kind = "integer" if integer else "decimal"
    if not (_is_int(value) if integer else _is_number(value)):
        raise _type_error(param, f"an {kind}" if integer else f"a {kind}", value)
    assert isinstance(value, int | float)
    if value < low:
        raise ApiError(
            400,
            f"Invalid '{param}': {kind} below minimum value. Expected a value >= {low:g}, "
            f"but got {value:g} instead.",
            param=param,
            code=f"{kind}_below_min_value",
        )
    if value > high:
        raise ApiError(
            400,
            f"Invalid '{param}': {kind} above maximum value. Expected a value <= {high:g}, "
            f"but got {value:g} instead.",
            param=param,
            code=f"{kind}_above_max_value",
        )


def _check_messages(messages: object) -> Sequence[Mapping[str, Any]]:
    if messages is None:
        raise ApiError(
            400,
            "Missing required parameter: 'messages'.",
            param="messages",
            code="missing_required_parameter",
        )
    if not isinstance(messages, list):
        raise _type_error("messages", "an array", messages)
    if not messages:
        raise ApiError(
            400,
            "Invalid 'messages': empty array. Expected an array with minimum length 1, "
            "but got an empty array instead.",
            param="messages",
            code="empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _type_error(f"messages[{index}]", "an object", message)
        role = message.get("role")
        if role not in ROLES:
            raise ApiError(
                400,
                f"Invalid value: '{role}'. Supported values are: 'system', 'assistant', "
                "'user', 'function', 'tool', and 'developer'.",
                param=f"messages[{index}].role",
                code="invalid_value",
            )
        for url in image_urls(message):
            # A data URL must hold an image (OpenAI decodes it); a web address is not fetched.
            if not url.startswith(("http://", "https://")) and image_size(url) is None:
                raise ApiError(
                    400,
                    "You uploaded an unsupported image. Please make sure your image is valid.",
                    param=f"messages[{index}].content",
                    code="invalid_image_format",
                )
    return messages


def validate_chat_request(body: Mapping[str, Any], models: Sequence[str]) -> None:
    """Raise :class:`ApiError` (400/404) for a body OpenAI would reject."""
    model = body.get("model")
    if model is None:
        raise ApiError(
            400,
            "Missing required parameter: 'model'.",
            param="model",
            code="missing_required_parameter",
        )
    if not isinstance(model, str):
        raise _type_error("model", "a string", model)
    messages = _check_messages(body.get("messages"))

    if body.get("temperature") is not None:
        _check_range("temperature", body["temperature"], 0, 2, integer=False)
    for param in ("max_completion_tokens", "max_tokens"):
        if body.get(param) is not None:
            _check_range(param, body[param], 1, 1_000_000, integer=True)
    for param in ("logprobs", "stream"):
        if body.get(param) is not None and not isinstance(body[param], bool):
            raise _type_error(param, "a boolean", body[param])
    if body.get("top_logprobs") is not None:
        _check_range("top_logprobs", body["top_logprobs"], 0, MAX_TOP_LOGPROBS, integer=True)
        if body.get("logprobs") is not True:
            raise ApiError(
                400,
                "Invalid value for 'top_logprobs': 'logprobs' must be set to true when "
                "'top_logprobs' is specified.",
                param="top_logprobs",
                code="invalid_value",
            )
    if body.get("n") not in (None, 1):
        raise ApiError(400, "The simulator only supports n=1.", param="n", code="invalid_value")
    stream_options = body.get("stream_options")
    if stream_options is not None:
        if not isinstance(stream_options, dict):
            raise _type_error("stream_options", "an object", stream_options)
        if not body.get("stream"):
            raise ApiError(
                400,
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                param="stream_options",
                code="invalid_value",
            )
    _check_response_format(body.get("response_format"), messages)

    if model not in models:
        raise model_not_found(model)


def _check_response_format(response_format: object, messages: Sequence[Mapping[str, Any]]) -> None:
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise _type_error("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind == "json_schema":
        raise ApiError(
            400,
            "The simulator does not support response_format of type 'json_schema'; "
            "use 'json_object' or 'text'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind not in ("text", "json_object"):
        raise ApiError(
            400,
            f"Invalid value: '{kind}'. Supported values are: 'json_object', 'json_schema', "
            "and 'text'.",
            param="response_format.type",
            code="invalid_value",
        )
    if kind == "json_object" and not any(
        "json" in message_text(message).lower() for message in messages
    ):
        raise ApiError(400, JSON_WORD_REQUIRED, param="messages")
