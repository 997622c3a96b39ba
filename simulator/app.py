"""The simulator's HTTP face: an OpenAI-compatible ``/v1`` API as a Starlette app.

Order of checks for ``POST /v1/chat/completions`` (each can stop the request):

1. API key (401) when ``config.api_key`` is set;
2. JSON body (400), then the request is counted (and its body kept, if ``config`` records);
3. OpenAI's validation (400) and the model list (404), then ``[[sim:...]]`` directives (400);
4. an ``http`` fault (its status), directive first, else the configured one;
5. the engine writes the answer and :mod:`.delivery` sends it, paced, maybe faulted.

The app reads ``config`` on every request, so a test may change it between requests.
"""

from __future__ import annotations

import threading
import time

import anyio.to_thread
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .config import LIMIT_FIELDS, SimulatorConfig
from .conversation import Conversation, estimate_prompt_tokens
from .delivery import (
    Activity,
    BufferedCompletion,
    Delivery,
    StreamedCompletion,
    hide_drop_tracebacks,
)
from .directives import DirectiveError, parse_directives
from .engine import generate
from .errors import (
    ApiError,
    context_length_exceeded,
    fault_error,
    invalid_api_key,
    missing_api_key,
    model_not_found,
)
from .validation import validate_chat_request
from .wire import Envelope

_STARTED = int(time.time())
_INVALID_JSON = (
    "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
    "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
    "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
    "contact us through our help center at help.openai.com.)"
)


def _authenticate(request: Request, config: SimulatorConfig) -> None:
    if not config.api_key:
        return
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise missing_api_key()
    if key.strip() != config.api_key:
        raise invalid_api_key(key.strip())


def _model_card(model: str, config: SimulatorConfig) -> dict[str, object]:
    card: dict[str, object] = {
        "id": model,
        "object": "model",
        "created": _STARTED,
        "owned_by": "simulator",
    }
    if config.describe_models:
        reads = ["text", "image"] if model in config.vision_models else ["text"]
        card["architecture"] = {"input_modalities": reads}
    return card


def create_app(config: SimulatorConfig) -> Starlette:
    """The ASGI app serving ``config``.

    ``app.state.stopping`` (a ``threading.Event``) makes every pending wait give up, so a
    server can stop with stalled streams open; ``app.state.activity`` counts open responses
    and client disconnects.
    """
    hide_drop_tracebacks()
    stopping = threading.Event()
    activity = Activity()

    async def list_models(request: Request) -> Response:
        try:
            _authenticate(request, config)
        except ApiError as error:
            return error.response()
        return JSONResponse(
            {"object": "list", "data": [_model_card(m, config) for m in config.models]}
        )

    async def retrieve_model(request: Request) -> Response:
        model = request.path_params["model"]
        try:
            _authenticate(request, config)
            if model not in config.models:
                raise model_not_found(model)
        except ApiError as error:
            return error.response()
        return JSONResponse(_model_card(model, config))

    async def chat_completions(request: Request) -> Response:
        try:
            _authenticate(request, config)
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, _INVALID_JSON) from None
            if not isinstance(body, dict):
                raise ApiError(400, _INVALID_JSON)
            config.record(body)
            validate_chat_request(body, config.models)
            room = None
            if config.context_window is not None:
                requested = estimate_prompt_tokens(body["messages"])
                if requested > config.context_window:
                    raise context_length_exceeded(config.context_window, requested)
                room = config.context_window - requested
            last_user = Conversation.from_messages(body["messages"]).raw_last_user
            try:
                directives = parse_directives(last_user)
            except DirectiveError as error:
                raise ApiError(400, str(error), param="messages", code="invalid_value") from None
            fault = directives.fault if directives.overrides_fault else config.take_fault()
            if fault is not None and fault.kind == "http":
                raise fault_error(fault, body["model"])
        except ApiError as error:
            return error.response()

        tps = directives.tokens_per_second
        delay = directives.first_token_delay
        stream_options = body.get("stream_options") or {}
        send_usage = config.send_usage if directives.send_usage is None else directives.send_usage
        # A limit under a name this server does not read is not one (`limit_fields`).
        unread = [name for name in LIMIT_FIELDS if name not in config.limit_fields]
        read = {name: value for name, value in body.items() if name not in unread}
        if room is not None:
            # The window holds the answer too: it is cut where the window is full.
            asked = next((read[name] for name in LIMIT_FIELDS if read.get(name)), None)
            read["max_completion_tokens"] = min(room, asked) if asked else room
        # Off the event loop: a [[sim:tokens=20000]] answer takes ~0.5 s of CPU, which would
        # otherwise freeze the pace of every other open stream.
        completion = await anyio.to_thread.run_sync(generate, read)
        delivery = Delivery(
            completion=completion,
            envelope=Envelope(model=body["model"]),
            include_logprobs=body.get("logprobs") is True,
            include_usage=send_usage and bool(stream_options.get("include_usage")),
            send_usage=send_usage,
            tokens_per_second=config.tokens_per_second if tps is None else tps,
            first_token_delay=config.first_token_delay if delay is None else delay,
            fault=fault,
            stopping=stopping,
            activity=activity,
        )
        if body.get("stream"):
            return StreamedCompletion(delivery)
        return BufferedCompletion(delivery)

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        message = f"Invalid URL ({request.method} {request.url.path})"
        return ApiError(status, message).response()

    app = Starlette(
        routes=[
            Route("/v1/models", list_models, methods=["GET"]),
            Route("/v1/models/{model:path}", retrieve_model, methods=["GET"]),
            Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        ],
        exception_handlers={404: not_found, 405: not_found},
    )
    app.state.config = config
    app.state.stopping = stopping
    app.state.activity = activity
    return app
