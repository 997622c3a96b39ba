"""What the benchmarks share: the environment, the simulator and daphne as child processes, and
what /proc says about them (CPU, resident memory)."""

from __future__ import annotations

import functools
import os
import platform
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30) -> None:
    """Until `url` answers, or fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def start_process(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """A child process; its output goes to a file in BENCH_LOGS (a directory) when set."""
    logs = os.environ.get("BENCH_LOGS")
    if not logs:
        return subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
    Path(logs).mkdir(parents=True, exist_ok=True)
    with (Path(logs) / f"{Path(args[2]).name}-{uuid.uuid4().hex[:6]}.log").open("wb") as out:
        return subprocess.Popen(args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def start_simulator(port: int, tps: float, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """The simulator at `tps` tokens a second, its first token at once (whatever
    SIMULATOR_FIRST_TOKEN_DELAY says: `make` sets one for `make run`)."""
    command = [sys.executable, "-m", "simulator", "--port", str(port), "--delay", "0"]
    return start_process([*command, "--tps", str(tps)], env)


def start_daphne(port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "chatsite.serve", "-b", "127.0.0.1", "-p", str(port)]
    return start_process([*command, "chatsite.asgi:application"], env)


def stop(processes: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each, then wait for each (a server lets its replies end first)."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class App:
    """One or more daphne processes of the app, each on a port of its own. Clients spread over
    them in turn (`url(i)`), as a proxy in front would."""

    servers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)

    @property
    def pids(self) -> list[int]:
        return [server.pid for server in self.servers]

    def url(self, index: int) -> str:
        return self.urls[index % len(self.urls)]

    def cpu_seconds(self) -> float:
        return sum(cpu_seconds(pid) for pid in self.pids)

    def rss_mb(self) -> float:
        return sum(status_mb(pid, "VmRSS") for pid in self.pids)

    def peak_rss_mb(self) -> float:
        return sum(status_mb(pid, "VmHWM") for pid in self.pids)

    def stop(self) -> None:
        stop(self.servers)


def start_app(processes: int, env: dict[str, str]) -> App:
    app = App()
    for _ in range(processes):
        port = free_port()
        app.servers.append(start_daphne(port, env))
        app.urls.append(f"http://127.0.0.1:{port}")
    try:
        for url in app.urls:
            wait_for(f"{url}/healthz", timeout=60)
    except BaseException:
        app.stop()
        raise
    return app


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def status_mb(pid: int, name: str) -> float:
    """A memory line of /proc/<pid>/status in MB: VmRSS (resident now), VmHWM (its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{name}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class OtherWork:
    """The CPU the rest of the machine spends while a benchmark runs: all its busy time
    (/proc/stat) minus this process's and that of `pids` (the app, the simulator), in cores.
    PostgreSQL and Redis count here, as does whatever else shares the machine."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.start = self._read()

    def _read(self) -> tuple[float, float, float]:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait
        usage = resource.getrusage(resource.RUSAGE_SELF)
        mine = usage.ru_utime + usage.ru_stime + sum(cpu_seconds(pid) for pid in self.pids)
        return time.monotonic(), busy, mine

    def cores(self) -> float:
        """Cores busy with other work since this was made."""
        now, busy, mine = self._read()
        wall = now - self.start[0]
        return ((busy - self.start[1]) - (mine - self.start[2])) / wall if wall else float("nan")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def bench_environment(prefix: str, processes: int = 1) -> dict[str, str]:
    """The environment of the app's processes, and of this one: production settings, limits
    high enough for a load generator, SQLite in a throwaway file unless DATABASE_URL names a
    database. Sets up Django in this process (migrated, the starter personas)."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "chatsite.settings",
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": os.environ.get("DJANGO_SECRET_KEY", "bench-" + uuid.uuid4().hex),
        "CHAT_MAX_CONCURRENT_REPLIES": "1000",
        "CHAT_MESSAGES_PER_MINUTE": "1000",
        "LOG_LEVEL": "WARNING",
    }
    if not env.get("DATABASE_URL"):
        env["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    ensure_database(env["DATABASE_URL"])
    if processes > 1 and not env.get("REDIS_URL"):
        sys.exit("Several processes need REDIS_URL (a shared channel layer).")
    os.environ.update(env)
    # Stopped (SIGTERM), the benchmark still stops the processes it started (its `finally`).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    call_command("collectstatic", "--noinput", verbosity=0)
    from conversations.starter import ensure_starter_personas

    ensure_starter_personas()
    return env


def ensure_database(url: str) -> None:
    """Create the PostgreSQL database `url` names when it does not exist yet."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import dj_database_url
    import psycopg
    from psycopg import sql

    config = dj_database_url.parse(url)
    server = {
        "host": config["HOST"] or None,
        "port": config["PORT"] or None,
        "user": config["USER"] or None,
        "password": config["PASSWORD"] or None,
        "dbname": "postgres",
        "autocommit": True,
    }
    with psycopg.connect(**{k: v for k, v in server.items() if v is not None}) as connection:
        name = config["NAME"]
        found = connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        if not found.fetchone():
            connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))


def stack_name(env: dict[str, str], processes: int) -> str:
    from django.db import connection

    database = "PostgreSQL" if connection.vendor == "postgresql" else "SQLite"
    layer = "Redis" if env.get("REDIS_URL") else "in-memory layer"
    return f"{database} + {layer}, {processes} process{'es' if processes > 1 else ''}"


def setting_exists(name: str) -> bool:
    """Whether the app reads setting `name` (a switch the benchmark can turn off)."""
    return name in (ROOT / "chatsite" / "settings.py").read_text()


@functools.cache
def machine() -> str:
    """The machine, with its speed at Python: machines of one kind have differed by more than
    twice in it, and every figure of the benchmarks with it."""
    return (
        f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}, 10 million additions in a Python function "
        f"in {python_loop_seconds():.2f} s"
    )


def python_loop_seconds() -> float:
    """The best of three runs of a loop of 10 million additions in a function (a loop at a
    module's top level, on globals, takes about twice as long)."""
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best
