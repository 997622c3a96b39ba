"""`manage.py chat` in a pseudo-terminal, driven as a person at a keyboard would drive it.

The child gets the pty as its controlling terminal (`pty.fork`), so Ctrl+C (\\x03) and Ctrl+D
(\\x04) written to it reach the command as they do from a real keyboard: a SIGINT from the
terminal driver, and end of input.
"""

from __future__ import annotations

import codecs
import os
import pty
import re
import select
import signal
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "you> "


class Terminal:
    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        with warnings.catch_warnings():
            # Python 3.12+ warns about fork() in a threaded process; the child only execs.
            warnings.simplefilter("ignore", DeprecationWarning)
            pid, fd = pty.fork()
        if pid == 0:  # the child: become the command at once
            os.chdir(ROOT)
            os.execve(sys.executable, [sys.executable, "manage.py", "chat", *args], env)
        self.pid, self.fd = pid, fd
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.output = ""  # everything read so far, "\r\n" made "\n"
        self.seen = 0  # where the next read_until starts looking
        self.chunks: list[tuple[float, str]] = []
        self.status: int | None = None

    def _read(self, timeout: float) -> bool:
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 4096)
        except OSError:  # EIO: the child has gone and the terminal with it
            data = b""
        if not data:
            return False
        text = self.decoder.decode(data).replace("\r\n", "\n")
        self.chunks.append((time.monotonic(), text))
        self.output += text
        return True

    def read_until(self, pattern: str, timeout: float = 20) -> str:
        """Output up to and including the next match of `pattern` (a regex or plain text)."""
        regex = re.compile(pattern if pattern.startswith("(?") else re.escape(pattern))
        deadline = time.monotonic() + timeout
        while True:
            match = regex.search(self.output, self.seen)
            if match:
                text = self.output[self.seen : match.end()]
                self.seen = match.end()
                return text
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(min(left, 0.5)):
                if regex.search(self.output, self.seen):
                    continue
                shown = self.output[self.seen :]
                raise AssertionError(
                    f"no {pattern!r} within {timeout} s; the terminal shows:\n{shown}"
                )

    def type(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")

    def ctrl_d(self) -> None:
        os.write(self.fd, b"\x04")

    def wait(self, timeout: float = 15) -> int:
        """The exit code, once the command has ended (its output read meanwhile)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
            self._read(0.1)
        raise AssertionError(f"the command did not end; the terminal shows:\n{self.output}")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)
