"""OpenAI-shaped error responses.

The SDK maps the HTTP status to an exception class (400 ``BadRequestError``, 401
``AuthenticationError``, 404 ``NotFoundError``, 429 ``RateLimitError``, >= 500
``InternalServerError``) and exposes the ``{"error": {...}}`` body as ``exc.body``; the app
under test may show ``message`` to the user, so the wording follows OpenAI's.
"""

from __future__ import annotations

from typing import Any

from starlette.responses import JSONResponse

from .config import Fault


class ApiError(Exception):
    """An error the simulator answers with, in OpenAI's ``{"error": {...}}`` shape."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def model_not_found(model: str) -> ApiError:
    return ApiError(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        code="model_not_found",
    )


def context_length_exceeded(window: int, requested: int) -> ApiError:
    """OpenAI's answer to a request longer than the model reads (vLLM's and llama.cpp's
    Python server's are worded the same way)."""
    return ApiError(
        400,
        f"This model's maximum context length is {window} tokens. However, your messages "
        f"resulted in {requested} tokens. Please reduce the length of the messages.",
        param="messages",
        code="context_length_exceeded",
    )


def missing_api_key() -> ApiError:
    return ApiError(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password "
        "field (with blank username) if you're accessing the API from your browser and are "
        "prompted for a username and password. You can obtain an API key from "
        "https://platform.openai.com/account/api-keys.",
    )


def invalid_api_key(key: str) -> ApiError:
    shown = f"{key[:3]}{'*' * max(0, len(key) - 7)}{key[-4:]}" if len(key) > 8 else key
    return ApiError(
        401,
        f"Incorrect API key provided: {shown}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        code="invalid_api_key",
    )


def fault_error(fault: Fault, model: str) -> ApiError:
    """The error an ``http`` fault answers with, worded like OpenAI's for that status."""
    status = fault.status
    if status == 401:
        error = invalid_api_key("sk-simulated-invalid-key")
    elif status == 404:
        error = model_not_found(model)
    elif status == 429:
        seconds = f"{fault.retry_after:g}"
        error = ApiError(
            429,
            f"Rate limit reached for {model} in organization org-simulator on requests per "
            f"min (RPM): Limit 3, Used 3, Requested 1. Please try again in {seconds}s.",
            type="requests",
            code="rate_limit_exceeded",
            headers={
                "retry-after": seconds,
                "x-ratelimit-limit-requests": "3",
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{seconds}s",
            },
        )
    elif status == 500:
        error = ApiError(
            500,
            "The server had an error while processing your request. Sorry about that!",
            type="server_error",
        )
    elif status == 503:
        error = ApiError(
            503,
            "The server is overloaded or not ready yet.",
            type="server_error",
        )
    elif status >= 500:
        error = ApiError(status, f"Simulated upstream error (HTTP {status}).", type="server_error")
    else:
        error = ApiError(status, f"Simulated request error (HTTP {status}).")
    if fault.message:
        error.message = fault.message
    return error
