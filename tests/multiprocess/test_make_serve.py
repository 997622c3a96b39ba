"""`make serve PROCESSES=N`: N daphne processes behind one address, kept running by supervisor
(deploy/supervisord.conf), on PostgreSQL and Redis."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import websockets
from channels.db import database_sync_to_async
from django.conf import settings as django_settings

from conversations import services
from conversations.models import Role, Status
from tests import servers
from tests.servers import ROOT, free_port, session_cookie

from .conftest import server_env
from .remote import RemoteSocket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.multiprocess]

CONFIG = ROOT / "deploy" / "supervisord.conf"
SUPERVISORCTL = Path(sys.executable).parent / "supervisorctl"


def make_env(**env: str) -> dict[str, str]:
    """This environment for a `make` of its own: none of a `make test` that runs these tests."""
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in {"MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES"}
    }
    return {**inherited, **env}


class Served:
    """`make serve` in a child process: make, then supervisord, then the daphne processes."""

    def __init__(self, processes: int, env: dict[str, str], run_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.run_dir = run_dir
        self.log = run_dir / "make-serve.log"
        self.env = env
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    "make",
                    "--no-print-directory",
                    "serve",
                    f"PROCESSES={processes}",
                    f"PORT={self.port}",
                    f"RUN_DIR={run_dir}",
                ],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def supervisord(self) -> int | None:
        try:
            return int((self.run_dir / "supervisord.pid").read_text())
        except (OSError, ValueError):
            return None

    def children(self) -> list[int]:
        pid = self.supervisord()
        path = Path(f"/proc/{pid}/task/{pid}/children")
        return [int(child) for child in path.read_text().split()] if path.exists() else []

    def supervisorctl(self, *args: str) -> str:
        result = subprocess.run(
            [str(SUPERVISORCTL), "-c", str(CONFIG), *args],
            env={**self.env, "RUN_DIR": str(self.run_dir)},
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result.stdout

    def name_of(self, pid: int) -> str:
        """supervisor's name for the process `pid` (`chatsite:chatsite-1`)."""
        for line in self.supervisorctl("status").splitlines():
            if f"pid {pid}," in line:
                return line.split()[0]
        raise AssertionError(f"supervisor runs no process {pid}")

    def log_tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-40:])

    def wait_until_serving(self, processes: int, timeout: float = 120) -> None:
        """Until the address answers and supervisor runs `processes` processes. `make serve`
        first migrates, collects the static files and runs `bootstrap`: seconds, not minutes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"make serve exited:\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1) as response:
                    if response.status == 200 and len(self.children()) == processes:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"make serve did not start serving:\n{self.log_tail()}")

    def stop(self) -> None:
        """SIGTERM to supervisord, as a deploy or Ctrl+C sends: it stops every process."""
        pid, children = self.supervisord(), self.children()
        if pid is not None and self.process.poll() is None:
            os.kill(pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            # supervisor puts each process in a process group of its own.
            for child in children:
                os.killpg(child, signal.SIGKILL)
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def healthz(url: str) -> int:
    with urllib.request.urlopen(f"{url}/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"
        return response.status


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


@contextlib.asynccontextmanager
async def a_socket_on_each_process(
    served: Served, conversation_id: int, cookie: str
) -> AsyncIterator[dict[int, RemoteSocket]]:
    """Sockets to the one address, one held by each process (the kernel picks which)."""
    children = served.children()
    sockets: dict[int, RemoteSocket] = {}
    opened: list[RemoteSocket] = []
    try:
        # Which process wins an accept is up to the scheduler: an idle one on the core the
        # test is not using may win many in a row. Keep trying, a moment apart, keeping only
        # the first socket on each process open.
        for _ in range(200):
            socket = RemoteSocket(served.url, conversation_id, cookie)
            await socket.__aenter__()
            opened.append(socket)
            await socket.until("ready")
            client_port = socket.connection.local_address[1]
            pid = await asyncio.to_thread(process_serving, children, client_port)
            if pid is None or pid in sockets:
                await socket.__aexit__()
                opened.remove(socket)
                await asyncio.sleep(0.05)
                continue
            sockets[pid] = socket
            if len(sockets) == len(children):
                break
        assert set(sockets) == set(children), "every socket landed on the same process"
        yield sockets
    finally:
        for socket in opened:
            await socket.__aexit__()


@pytest.fixture(scope="module")
def served(
    postgres, redis_url, sim_server, django_db_blocker, tmp_path_factory
) -> Iterator[Served]:
    with django_db_blocker.unblock():
        database_url = servers.test_database_url()  # (a test_* name pytest would collect)
    run_dir = tmp_path_factory.mktemp("serve")
    env = make_env(
        DJANGO_SETTINGS_MODULE="chatsite.settings",
        DJANGO_SECRET_KEY=django_settings.SECRET_KEY,
        DATABASE_URL=database_url,
        # collectstatic writes here, not into the working tree's staticfiles/.
        DJANGO_STATIC_ROOT=str(run_dir / "static"),
        **server_env(redis_url, sim_server.base_url),
    )
    server = Served(2, env, run_dir)
    try:
        server.wait_until_serving(2)
        yield server
    finally:
        server.stop()


async def test_two_processes_behind_one_address_share_a_reply(served, owner, personas):
    """Sockets to the one address land on both processes; a reply asked for on one streams on
    the other."""
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    async with a_socket_on_each_process(served, conversation.pk, cookie) as sockets:
        one, other = sockets.values()
        await one.say("Hello across processes [[sim:tps=100,tokens=30]]")
        ended = await other.until("reply.ended", timeout=20)
        # Read to the end on the asking tab too: a client that leaves frames unread closes slowly.
        await one.until("reply.ended")
    assert ended["message"]["status"] == Status.COMPLETE
    assert other.streamed_text(ended["message"]["id"]) == ended["message"]["content"]


def test_a_process_that_dies_is_replaced_and_the_address_keeps_serving(served):
    before = served.children()
    os.kill(before[0], signal.SIGKILL)
    assert healthz(served.url) == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        after = served.children()
        if len(after) == 2 and before[0] not in after:
            break
        time.sleep(0.2)
    assert len(after) == 2 and before[0] not in after and before[1] in after
    served.wait_until_serving(2)


async def test_a_rolling_restart_lets_the_reply_being_written_finish(served, owner, personas):
    """`supervisorctl restart` of the process writing a reply: the process finishes the reply
    before it exits (it can, within CHAT_SHUTDOWN_GRACE_SECONDS), the other process answers the
    address meanwhile, the tab whose socket closed finds the whole reply when it reconnects, and
    supervisor starts the restarted process again."""
    conversation = await database_sync_to_async(services.start_conversation)(user=owner)
    cookie = await database_sync_to_async(session_cookie)(owner)
    answers: list[int] = []
    async with a_socket_on_each_process(served, conversation.pk, cookie) as sockets:
        (writer, asking), (_, watching) = sockets.items()
        await asking.say("A reply of some seconds [[sim:tps=20,tokens=50]]")
        await watching.until("reply.delta")
        restart = asyncio.create_task(
            asyncio.to_thread(served.supervisorctl, "restart", served.name_of(writer))
        )

        async def ask_the_address_until_restarted() -> None:
            while not restart.done():
                answers.append(await asyncio.to_thread(healthz, served.url))
                await asyncio.sleep(0.2)

        asking_the_address = asyncio.create_task(ask_the_address_until_restarted())
        ended = await watching.until("reply.ended", timeout=20)
        await read_until_closed(asking)  # its process exits once its reply is done
        restarted = await asyncio.wait_for(restart, timeout=40)
        await asking_the_address
    async with RemoteSocket(served.url, conversation.pk, cookie) as reconnected:
        await reconnected.until("ready")
        await reconnected.send({"type": "subscribe", "after_id": 0})
        caught_up = await reconnected.until("sync")
    assert ended["message"]["status"] == Status.COMPLETE
    assert watching.streamed_text(ended["message"]["id"]) == ended["message"]["content"]
    assert caught_up["messages"][-1] == ended["message"]
    assert "started" in restarted, restarted
    assert answers and set(answers) == {200}
    stored = await database_sync_to_async(
        lambda: conversation.messages.filter(role=Role.ASSISTANT).get()
    )()
    assert stored.status == Status.COMPLETE and stored.content == ended["message"]["content"]
    after = served.children()
    assert len(after) == 2 and writer not in after
    await asyncio.to_thread(served.wait_until_serving, 2)


async def read_until_closed(socket: RemoteSocket, timeout: float = 30) -> None:
    """Read what the server sends until it closes the socket, as a page does."""
    with contextlib.suppress(websockets.ConnectionClosed):
        async with asyncio.timeout(timeout):
            while True:
                await socket.receive(timeout=timeout)


def test_several_processes_without_redis_are_refused_with_a_reason(tmp_path):
    # Empty, not unset, so a developer's .env cannot fill it in.
    result = subprocess.run(
        ["make", "--no-print-directory", "serve", "PROCESSES=2", f"RUN_DIR={tmp_path}"],
        cwd=ROOT,
        env=make_env(REDIS_URL=""),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "REDIS_URL" in result.stderr
    assert not (tmp_path / "supervisord.pid").exists()
