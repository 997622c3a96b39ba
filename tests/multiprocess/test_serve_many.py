"""`bin/serve-many`: N daphne processes behind one address, on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from conversations import services
from conversations.models import Status
from tests import servers
from tests.servers import ROOT, free_port, session_cookie

from .remote import RemoteSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]

SCRIPT = ROOT / "bin" / "serve-many"


class ServeMany:
    def __init__(self, processes: int, env: dict[str, str]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, str(SCRIPT), "--processes", str(processes), "--port", str(self.port)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(pid) for pid in path.read_text().split()] if path.exists() else []

    def wait_until_serving(self, processes: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, "serve-many exited"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200 and len(self.children()) == processes:
                        return
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError("serve-many did not start serving")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def process_serving(children: list[int], client_port: int) -> int | None:
    """Which child holds the server side of the connection from `client_port`."""
    owners = {inode: pid for pid in children for inode in socket_inodes(pid)}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == client_port and fields[9] in owners:
                return owners[fields[9]]
    return None


@pytest.fixture(scope="module")
def serve_many(postgres, redis_url, sim_server, django_db_blocker) -> Iterator[ServeMany]:
    with django_db_blocker.unblock():
        database_url = servers.test_database_url()  # (a test_* name pytest would collect)
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "1",
        "DJANGO_SECRET_KEY": django_settings.SECRET_KEY,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "OPENAI_BASE_URL": sim_server.base_url,
        "OPENAI_API_KEY": "sk-test",
        "CHAT_FLUSH_SECONDS": "0.2",
        "LOG_LEVEL": "WARNING",
    }
    server = ServeMany(2, env)
    try:
        server.wait_until_serving(2)
        yield server
    finally:
        server.stop()


async def test_two_processes_behind_one_address_share_a_reply(serve_many, owner, personas):
    """Sockets to the one address land on both processes (the kernel picks); a reply asked
    for on one streams on the other."""
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    children = serve_many.children()
    sockets: dict[int, RemoteSocket] = {}
    opened: list[RemoteSocket] = []
    try:
        # Which process wins an accept is up to the scheduler: an idle one on the core the
        # test is not using may win many in a row. Keep trying, a moment apart, keeping only
        # the first socket on each process open.
        for _ in range(200):
            socket = RemoteSocket(serve_many.url, conversation.pk, cookie)
            await socket.__aenter__()
            opened.append(socket)
            await socket.until("ready")
            client_port = socket.connection.local_address[1]
            pid = await asyncio.to_thread(process_serving, children, client_port)
            if pid in sockets:
                await socket.__aexit__()
                opened.remove(socket)
                await asyncio.sleep(0.05)
                continue
            sockets[pid] = socket
            if len(sockets) == 2:
                break
        assert set(sockets) == set(children), "every socket landed on the same process"
        one, other = sockets.values()
        await one.say("Hello across processes [[sim:tps=100,tokens=30]]")
        ended = await other.until("reply.ended", timeout=20)
    finally:
        for socket in opened:
            await socket.__aexit__()
    assert ended["message"]["status"] == Status.COMPLETE
    assert other.streamed_text(ended["message"]["id"]) == ended["message"]["content"]


def test_a_process_that_dies_is_replaced_and_the_address_keeps_serving(serve_many):
    before = serve_many.children()
    os.kill(before[0], signal.SIGKILL)
    with urllib.request.urlopen(f"{serve_many.url}/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = serve_many.children()
        if len(after) == 2 and before[0] not in after:
            break
        time.sleep(0.2)
    assert len(after) == 2 and before[0] not in after and before[1] in after
    serve_many.wait_until_serving(2)


def test_several_processes_without_redis_are_refused_with_a_reason():
    env = {**os.environ, "REDIS_URL": ""}  # empty, so a developer's .env cannot fill it in
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--processes", "2", "--port", str(free_port())],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr
