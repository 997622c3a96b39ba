"""Run-time knobs of the simulator, shared between a test and the server thread.

Tests hold a reference to the same :class:`SimulatorConfig` object the running app reads on
every request, so changing a field (pace, fault, API key, models) takes effect on the next
request without restarting anything. :meth:`SimulatorConfig.reset` puts it back in place,
which lets a test module share one server and still give every test a clean model.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast, get_args

FaultKind = Literal[
    "http", "drop", "stall", "no_finish", "broken_chunk", "error_event", "content_filter", "empty"
]
FAULT_KINDS: tuple[str, ...] = get_args(FaultKind)

DEFAULT_MODELS: tuple[str, ...] = ("gpt-4o-mini", "gpt-4o", "gpt-4.1-mini", "sim-1", "sim-vision")
# The listed models that read images: their `/v1/models` card says so (`app._model_card`).
DEFAULT_VISION_MODELS: tuple[str, ...] = ("sim-vision",)
# The names of a request's limit on the answer's length: OpenAI's, and the older one.
LIMIT_FIELDS: tuple[str, ...] = ("max_completion_tokens", "max_tokens")


@dataclass
class Fault:
    """A failure the simulator should act out instead of (or part-way through) an answer.

    ``kind`` picks the failure:

    - ``"http"``: answer with HTTP ``status`` and an OpenAI-shaped error body
      (429 also carries ``retry-after: <retry_after>``).
    - ``"drop"``: send ``after`` content chunks, then close the TCP connection mid-body.
    - ``"stall"``: send ``after`` content chunks, then nothing for ``stall_seconds``
      (the connection stays open), then close it.
    - ``"no_finish"``: send every content chunk and ``data: [DONE]`` but never a
      ``finish_reason`` and never a usage chunk.
    - ``"broken_chunk"``: after ``after`` content chunks send ``data: {"id": broken``,
      a line that is not JSON.
    - ``"error_event"``: after ``after`` content chunks send an OpenAI-shaped error object
      (``data: {"error": {...}}``) in the stream, as a server does when it fails mid-answer.
    - ``"content_filter"``: stop after ``after`` content chunks with
      ``finish_reason="content_filter"``.
    - ``"empty"``: answer 200 and end the body with nothing in it, no event of a stream, no
      JSON of an answer, as llama.cpp's Python server answers a streamed request longer than
      its context window.

    ``times`` limits the fault to that many requests (then it clears itself), which is how a
    test makes "the first attempt fails, the retry succeeds"; ``None`` means every request.
    """

    kind: FaultKind
    status: int = 500
    after: int = 0
    stall_seconds: float = 3600.0
    retry_after: float = 1.0
    message: str | None = None
    times: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {FAULT_KINDS}")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error code, got {self.status}")
        if self.after < 0:
            raise ValueError("fault 'after' must be >= 0")
        if self.stall_seconds < 0:
            raise ValueError("fault 'stall_seconds' must be >= 0")

    @classmethod
    def parse(cls, spec: str) -> Fault:
        """Build a fault from the directive spelling, e.g. ``"http:429"``, ``"drop:3"``.

        Accepted forms: ``http:<status>``, ``drop[:<after>]``, ``stall[:<after>[:<seconds>]]``,
        ``no_finish``, ``broken_chunk[:<after>]``, ``error_event[:<after>]``,
        ``content_filter[:<after>]``.
        Raises ``ValueError`` with a readable message for anything else.
        """
        kind, *args = [part.strip() for part in spec.strip().split(":")]
        if kind not in FAULT_KINDS:
            raise ValueError(
                f"unknown fault kind {kind!r}; expected one of {', '.join(FAULT_KINDS)}"
            )
        try:
            if kind == "http":
                if len(args) != 1:
                    raise ValueError("expected http:<status>, e.g. http:429")
                return cls(kind="http", status=int(args[0]))
            if kind == "no_finish":
                if args:
                    raise ValueError("no_finish takes no argument")
                return cls(kind="no_finish")
            if kind == "stall":
                if len(args) > 2:
                    raise ValueError("expected stall[:<after>[:<seconds>]]")
                after = int(args[0]) if args else 0
                seconds = float(args[1]) if len(args) == 2 else 3600.0
                return cls(kind="stall", after=after, stall_seconds=seconds)
            if len(args) > 1:
                raise ValueError(f"expected {kind}[:<after>]")
            return cls(kind=cast(FaultKind, kind), after=int(args[0]) if args else 0)
        except ValueError as error:
            raise ValueError(f"invalid fault {spec!r}: {error}") from None


@dataclass
class SimulatorConfig:
    """Everything a test may change while the simulator is running.

    - ``tokens_per_second``: streaming pace; ``None`` or ``0`` sends as fast as possible.
    - ``first_token_delay``: seconds between the role chunk and the first content token
      (for non-streamed requests: added to the time the whole answer takes).
    - ``fault``: a :class:`Fault` acted out on every request (or ``fault.times`` requests).
    - ``api_key``: when set, requests need ``Authorization: Bearer <api_key>``.
    - ``models``: ids served by ``/v1/models``; other models get OpenAI's 404.
    - ``vision_models``: which of them read images. Each card in ``/v1/models`` says what
      its model reads, as OpenRouter's cards do: ``architecture.input_modalities``,
      ``["text", "image"]`` or ``["text"]``.
    - ``describe_models``: ``False`` leaves ``architecture`` out of the cards, which then hold
      only ``id``, ``object``, ``created`` and ``owned_by``, as OpenAI's, Ollama's, vLLM's
      and llama.cpp's do.
    - ``record_requests``: how many of the latest chat-completions bodies to keep, so a test
      can assert which context reached the model (read them as :attr:`requests`). ``0``, the
      default and the demo model's setting, keeps none: a body can be megabytes, and a
      server that kept every one would grow for as long as it runs.
    - ``request_count``: how many chat-completions requests arrived, recorded or not.
    - ``send_usage``: ``False`` leaves the usage out of every answer, streamed (even when
      ``stream_options.include_usage`` asks for it) or not, as llama.cpp's and some other
      local servers do; ``[[sim:usage=none]]`` does the same for one request.
    - ``limit_fields``: the names of the answer's length limit the server reads. Both by
      default, as OpenAI's own API, Ollama's and vLLM's do; ``("max_tokens",)`` acts out
      llama-cpp-python's server, which ignores ``max_completion_tokens`` and writes on.
    - ``context_window``: the tokens a request's messages and its answer share (counted as
      its usage counts them), or ``None`` for no limit. Messages longer than that get OpenAI's
      HTTP 400 ``context_length_exceeded``, as every server with a fixed window answers them;
      an answer is cut (``finish_reason: "length"``) where the window is full, as llama.cpp's.
    """

    tokens_per_second: float | None = None
    first_token_delay: float = 0.0
    fault: Fault | None = None
    api_key: str | None = None
    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS))
    vision_models: list[str] = field(default_factory=lambda: list(DEFAULT_VISION_MODELS))
    describe_models: bool = True
    record_requests: int = 0
    send_usage: bool = True
    limit_fields: tuple[str, ...] = LIMIT_FIELDS
    context_window: int | None = None
    request_count: int = field(default=0, init=False)
    _recorded: deque[dict[str, Any]] = field(init=False, repr=False, compare=False)
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def __post_init__(self) -> None:
        if self.record_requests < 0:
            raise ValueError("record_requests must be >= 0")
        # A deque of maxlen 0 drops every append: recording off costs nothing.
        self._recorded = deque(maxlen=self.record_requests)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The recorded chat-completions bodies, oldest first (at most ``record_requests``)."""
        with self._lock:
            return list(self._recorded)

    @property
    def interval(self) -> float:
        """Seconds between two streamed tokens (0 when unpaced)."""
        tps = self.tokens_per_second
        return 1.0 / tps if tps else 0.0

    def record(self, body: dict[str, Any]) -> None:
        """Count a request and keep its body if recording; the app calls it for every
        chat-completions request."""
        with self._lock:
            self.request_count += 1
            keep = max(0, self.record_requests)
            if self._recorded.maxlen != keep:  # set again since the last request
                self._recorded = deque(self._recorded, maxlen=keep)
            self._recorded.append(body)

    def take_fault(self) -> Fault | None:
        """Return the configured fault for this request, counting down ``fault.times``."""
        with self._lock:
            fault = self.fault
            if fault is not None and fault.times is not None:
                fault.times -= 1
                if fault.times <= 0:
                    self.fault = None
                if fault.times < 0:
                    return None
            return fault

    def reset(self) -> None:
        """Restore every field to its default in place (the running app keeps this object):
        what was recorded is forgotten, and recording is off again."""
        fresh = SimulatorConfig()
        with self._lock:
            for item in fields(self):
                if item.name != "_lock":
                    setattr(self, item.name, getattr(fresh, item.name))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> SimulatorConfig:
        """Config for the demo model: ``SIMULATOR_TPS`` and ``SIMULATOR_FIRST_TOKEN_DELAY``.

        Unset or empty variables keep the defaults (unpaced, no delay), so a test process
        that starts the background simulator gets fast answers unless it asks otherwise.
        It records no request: the demo model runs as long as the server does.
        """
        env = os.environ if environ is None else environ
        config = cls()
        tps = env.get("SIMULATOR_TPS", "").strip()
        if tps:
            value = float(tps)
            config.tokens_per_second = value if value > 0 else None
        delay = env.get("SIMULATOR_FIRST_TOKEN_DELAY", "").strip()
        if delay:
            config.first_token_delay = max(0.0, float(delay))
        return config
