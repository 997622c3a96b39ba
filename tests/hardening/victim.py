"""A second user timed as the victim of an attack: a fix for one user's misbehaviour is proven
by the victim's numbers, not only by the attacker's error frame.

    victim = await Victim.ready(user, conversation)   # idle time measured here
    ...start the attack...
    await victim.still_served("lone surrogates")       # timed again, printed and compared
"""

from __future__ import annotations

import gc
import statistics
import time
from typing import Any

from tests.conversations.chat_client import ChatSocket

# During an attack the victim's replies take a few times their idle time at most (the median
# of those timed), and no single one more than twice that: the attacks these tests guard against
# cost seconds. A floor keeps a very fast idle reply from turning scheduling noise into a
# failure. Tests that use a victim run with the server's collector (`server_collector`).
MOST_TIMES_IDLE = 5
SINGLE_OVER_LIMIT = 2
FLOOR_SECONDS = 0.25


class Victim:
    def __init__(self, user: Any, conversation: Any) -> None:
        self.user = user
        self.conversation = conversation
        self.idle = 0.0
        self.timings: list[float] = []

    @classmethod
    async def ready(cls, user: Any, conversation: Any, rounds: int = 2) -> Victim:
        assert gc.get_freeze_count(), "a victim is timed with the server's collector"
        victim = cls(user, conversation)
        idle = [await victim.reply_seconds() for _ in range(rounds)]
        victim.idle = min(idle)
        return victim

    async def reply_seconds(self, content: str = "Hello") -> float:
        """From sending a message to its reply's end, on a socket of the victim's own."""
        async with ChatSocket(self.user, self.conversation.pk) as socket:
            await socket.until("ready")
            started = time.perf_counter()
            client_id = await socket.say(content)
            ended = await socket.until("reply.ended", timeout=30)
            elapsed = time.perf_counter() - started
            assert ended["message"]["status"] == "complete", ended["message"]
            stored = [
                f for f in socket.of_type("message.created") if f["message"]["role"] == "user"
            ]
            assert any(f["message"]["client_id"] == client_id for f in stored)
        return elapsed

    async def still_served(self, attack: str) -> float:
        """Time one reply during the attack; print it beside the idle time and compare."""
        during = await self.reply_seconds()
        self.timings.append(during)
        limit = max(self.idle * MOST_TIMES_IDLE, FLOOR_SECONDS)
        median = statistics.median(self.timings)
        print(
            f"victim during {attack}: {during * 1000:.0f} ms, median {median * 1000:.0f} ms "
            f"(idle {self.idle * 1000:.0f} ms, limit {limit * 1000:.0f} ms)"
        )
        # A median of one or two is a single pause of the machine: judged as a single reply.
        if len(self.timings) >= 3:
            assert median <= limit, f"the victim's replies took {median:.3f} s during {attack}"
        assert during <= SINGLE_OVER_LIMIT * limit, (
            f"the victim's reply took {during:.3f} s during {attack}"
        )
        return during
