"""``[[sim:...]]`` directives: per-request control from inside the last user message.

A test that runs the simulator in another process, or a person trying the demo, cannot
reach the :class:`~simulator.config.SimulatorConfig` object. Writing
``[[sim:fault=drop:3]]`` or ``[[sim:tps=5]]`` into the message reaches the model instead.

Syntax: ``[[sim:key=value]]``, several pairs separated by commas or several directives::

    [[sim:fault=http:429]]  [[sim:fault=drop:3]]  [[sim:fault=stall:2]]  [[sim:fault=stall:2:10]]
    [[sim:fault=no_finish]] [[sim:fault=broken_chunk:2]] [[sim:fault=content_filter:4]]
    [[sim:fault=none]]      (ignore the configured fault for this request)
    [[sim:tps=5]]  [[sim:delay=0.5]]  [[sim:tokens=300]]  [[sim:tps=5,delay=0.5]]
    [[sim:usage=none]]  (no usage in the answer, as some local servers do; usage=sent restores it)

Only the last user message is obeyed; directives are stripped from every quoted text.
A malformed directive is a 400 error, so a typo never passes silently.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from .config import Fault

_DIRECTIVE = re.compile(r"\[\[sim:([^\[\]]*)\]\]")
_DIRECTIVE_WITH_SPACE = re.compile(r"[ \t]*\[\[sim:[^\[\]]*\]\][ \t]*")
MAX_MIN_TOKENS = 20_000


class DirectiveError(ValueError):
    """A ``[[sim:...]]`` directive the simulator cannot understand."""


@dataclass(frozen=True)
class Directives:
    """What the last user message asked of the simulator.

    ``overrides_fault`` is True when the message named a fault (including ``none``), which
    then replaces the configured one; ``None`` in the other fields means "not given".
    """

    fault: Fault | None = None
    overrides_fault: bool = False
    tokens_per_second: float | None = None
    first_token_delay: float | None = None
    min_tokens: int | None = None
    send_usage: bool | None = None


def strip_directives(text: str) -> str:
    """The text without directives (and the spaces around them), trimmed."""
    return _DIRECTIVE_WITH_SPACE.sub(" ", text).strip()


def _number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DirectiveError(f"[[sim:{key}=...]] needs a number, got {value!r}") from None
    if not math.isfinite(number) or number < 0:
        raise DirectiveError(f"[[sim:{key}=...]] needs a number >= 0, got {value!r}")
    return number


def parse_directives(text: str) -> Directives:
    """Read every directive in ``text``; later ones win. Raises :class:`DirectiveError`."""
    fault: Fault | None = None
    overrides_fault = False
    tps: float | None = None
    delay: float | None = None
    min_tokens: int | None = None
    send_usage: bool | None = None
    for match in _DIRECTIVE.finditer(text):
        for pair in filter(None, (p.strip() for p in match.group(1).split(","))):
            key, sep, value = (s.strip() for s in pair.partition("="))
            if not sep or not value:
                raise DirectiveError(f"simulator directive {pair!r} is not key=value")
            if key == "fault":
                overrides_fault = True
                try:
                    fault = None if value == "none" else Fault.parse(value)
                except ValueError as error:
                    raise DirectiveError(str(error)) from None
            elif key == "tps":
                tps = _number(key, value)
            elif key == "delay":
                delay = _number(key, value)
            elif key == "tokens":
                min_tokens = min(int(_number(key, value)), MAX_MIN_TOKENS)
            elif key == "usage":
                if value not in ("none", "sent"):
                    raise DirectiveError(f"[[sim:usage=...]] is none or sent, got {value!r}")
                send_usage = value == "sent"
            else:
                raise DirectiveError(
                    f"unknown simulator directive {key!r}; known: fault, tps, delay, tokens, usage"
                )
    return Directives(
        fault=fault,
        overrides_fault=overrides_fault,
        tokens_per_second=tps,
        first_token_delay=delay,
        min_tokens=min_tokens,
        send_usage=send_usage,
    )
