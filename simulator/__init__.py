"""An offline, OpenAI-compatible chat-completions model.

The app talks to it when no real OpenAI key exists (demo mode), and every test uses it
instead of the network. It speaks the real wire format (``/v1/models``,
``/v1/chat/completions`` streamed and not), writes deterministic markdown that reflects the
conversation, and can act out the failures a real API shows: HTTP errors, dropped and
stalled streams, missing finish reasons, broken chunks and content filtering.

Pure Python + Starlette + uvicorn, a package of its own: it imports nothing of the app (no
Django, no ``conversations``), and records no request unless its config asks it to.
"""

from __future__ import annotations

from .app import create_app
from .config import Fault, FaultKind, SimulatorConfig
from .delivery import Activity
from .engine import Completion, generate
from .server import SimulatorServer, ensure_background_simulator
from .tokens import Token

__all__ = [
    "Activity",
    "Completion",
    "Fault",
    "FaultKind",
    "SimulatorConfig",
    "SimulatorServer",
    "Token",
    "create_app",
    "ensure_background_simulator",
    "generate",
]
