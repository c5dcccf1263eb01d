"""Helpers shared by the benchmarks in bench/.

A benchmark run gets its own database: a temporary SQLite file (the default) or, with
`--database postgres://...`, a PostgreSQL database of that name that the run creates, migrates and
drops. The benchmark process itself uses it through Django (call `fresh_database` before anything
imports Django models: settings are read once per process), and starts real `cobrador worker`
subprocesses against it with `start_worker`. Results are printed as one JSON object.
"""

import argparse
import contextlib
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parent.parent


def add_database_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database", default="sqlite", metavar="URL",
        help="'sqlite' (default: a temporary file) or postgres://user@host:port/NAME; the database NAME is "
             "created for the run and dropped afterwards, so never name one that holds data")


@dataclass
class BenchDatabase:
    vendor: str  # "sqlite" or "postgresql"
    url: str
    data_dir: Path
    env: dict[str, str]  # the environment for `cobrador` subprocesses
    workers: list["Worker"] = field(default_factory=list)


def analyze_tables() -> None:
    """ANALYZE (PostgreSQL) or PRAGMA optimize (SQLite) the bench database, after a bulk setup."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE" if connection.vendor == "postgresql" else "PRAGMA optimize")


def _maintenance_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name or not name.replace("_", "").isalnum():
        raise SystemExit(f"bench: the database name in {url!r} must be letters, digits and underscores")
    return urlunsplit((parts.scheme, parts.netloc, "/postgres", parts.query, "")), name


def _postgres_admin(url: str, statement: str) -> None:
    import psycopg

    maintenance, _ = _maintenance_url(url)
    with psycopg.connect(maintenance.replace("postgres://", "postgresql://", 1), autocommit=True) as conn:
        conn.execute(statement)


@contextlib.contextmanager
def fresh_database(database: str = "sqlite", *, extra_env: dict[str, str] | None = None,
                   migrate: bool = True) -> Iterator[BenchDatabase]:
    """A new, migrated database for this run, set up for Django in this process; removed afterwards.

    Also stops every worker started with `start_worker` before the database goes away.
    """
    data_dir = Path(tempfile.mkdtemp(prefix="cobrador-bench-"))
    env = {**os.environ, "COBRADOR_DATA_DIR": str(data_dir), "COBRADOR_LOG_LEVEL": "WARNING",
           "DJANGO_SETTINGS_MODULE": "cobrador.settings", **(extra_env or {})}
    if database in ("sqlite", ""):
        vendor, url = "sqlite", f"sqlite:///{data_dir / 'cobrador.sqlite3'}"
    elif database.startswith(("postgres://", "postgresql://")):
        vendor, url = "postgresql", database
        _, name = _maintenance_url(url)
        _postgres_admin(url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        _postgres_admin(url, f'CREATE DATABASE "{name}"')
    else:
        raise SystemExit(f"bench: --database must be 'sqlite' or a postgres:// URL, not {database!r}")
    env["COBRADOR_DATABASE_URL"] = url
    os.environ.update(env)
    bench_db = BenchDatabase(vendor=vendor, url=url, data_dir=data_dir, env=env)
    try:
        import django

        django.setup()
        if migrate:
            from django.core.management import call_command

            call_command("migrate", interactive=False, verbosity=0)
        yield bench_db
    finally:
        for worker in bench_db.workers:
            worker.stop()
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        if vendor == "postgresql":
            _postgres_admin(url, f'DROP DATABASE IF EXISTS "{_maintenance_url(url)[1]}" WITH (FORCE)')
        shutil.rmtree(data_dir, ignore_errors=True)


def _die_with_parent() -> None:
    """Popen preexec_fn: the child gets SIGTERM when the benchmark exits, however it exits (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG


def _process_tree(pid: int) -> list[int]:
    pids, i = [pid], 0
    while i < len(pids):
        for task in Path(f"/proc/{pids[i]}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                pids += [int(p) for p in task.read_text().split()]
        i += 1
    return pids


def peak_rss_bytes(pid: int) -> int:
    """The peak resident set (VmHWM) of a running process and its descendants, added up (Linux)."""
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) * 1024
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process and its descendants (Linux)."""
    total = 0
    for p in _process_tree(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def machine_cpu_seconds() -> float | None:
    """CPU time the whole machine has spent busy (user, system, interrupts) since boot, from /proc/stat:
    the difference over a step counts this process, its children and the database server alike, and
    varies far less than wall time when the host is shared. None where /proc/stat is missing."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


def own_peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class Worker:
    """A real `cobrador worker` subprocess against the bench database; its output goes to a log file."""

    def __init__(self, bench_db: BenchDatabase, *args: str, env: dict[str, str] | None = None):
        self.log_path = bench_db.data_dir / f"worker-{len(bench_db.workers)}.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cobrador.cli", "worker", *args],
            env={**bench_db.env, **(env or {})}, stdout=self._log, stderr=subprocess.STDOUT, cwd=bench_db.data_dir,
            preexec_fn=_die_with_parent)
        self.peak_rss = 0
        bench_db.workers.append(self)

    def check_alive(self) -> None:
        if self.process.poll() is not None:
            raise RuntimeError(f"cobrador worker exited with {self.process.returncode}; "
                               f"log:\n{self.log_path.read_text()[-3000:]}")

    def sample_rss(self) -> int:
        if self.process.poll() is None:
            self.peak_rss = max(self.peak_rss, peak_rss_bytes(self.process.pid))
        return self.peak_rss

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def stop(self, timeout: float = 30) -> None:
        if self.process.poll() is None:
            self.sample_rss()
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()


def start_worker(bench_db: BenchDatabase, *args: str, env: dict[str, str] | None = None) -> Worker:
    return Worker(bench_db, *args, env=env)


def wait_until(predicate, *, timeout: float, interval: float = 0.05, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(p / 100 * len(ordered))))
    return ordered[rank - 1]


def print_json(result: dict) -> None:
    print(json.dumps(result, indent=2, sort_keys=False), flush=True)


# --- a fast webhook receiver on loopback, in its own process ------------------------------------
#
# A minimal asyncio HTTP/1.1 keep-alive server: it records (webhook-id, time.time()) for every POST
# and answers 200 at once, so what a benchmark measures is the sender, not the receiver. Every
# `verify_every`-th request is checked with the `standardwebhooks` package against the secret the
# benchmark gave it. Control requests: GET /_stats, GET /_receipts, POST /_reset, POST /_secret.

_OK = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 11\r\n\r\n{\"ok\":true}"


def _serve_receiver(verify_every: int) -> None:
    import asyncio

    receipts: list[tuple[str, float]] = []
    state = {"secret": "", "verified": 0, "bad_signatures": 0}

    def verify(body: bytes, headers: dict[str, str]) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        try:
            Webhook(state["secret"]).verify(body, headers)
            state["verified"] += 1
        except WebhookVerificationError:
            state["bad_signatures"] += 1

    def control(method: str, path: str, body: bytes) -> bytes:
        if path == "/_stats":
            payload = {"count": len(receipts), "unique": len({r[0] for r in receipts}),
                       "last_at": receipts[-1][1] if receipts else None,
                       "verified": state["verified"], "bad_signatures": state["bad_signatures"]}
        elif path == "/_receipts":
            payload = receipts
        elif path == "/_reset" and method == "POST":
            receipts.clear()
            state.update(verified=0, bad_signatures=0)
            payload = {}
        elif path == "/_secret" and method == "POST":
            state["secret"] = body.decode()
            payload = {}
        else:
            return b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
        data = json.dumps(payload).encode()
        return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
            len(data), data)

    class Receiver(asyncio.Protocol):
        def connection_made(self, transport):
            self.transport = transport
            self.buffer = bytearray()

        def data_received(self, data):
            self.buffer += data
            while True:
                end = self.buffer.find(b"\r\n\r\n")
                if end < 0:
                    return
                lines = bytes(self.buffer[:end]).decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    name, _, value = line.partition(":")
                    headers[name.strip().lower()] = value.strip()
                length = int(headers.get("content-length", "0"))
                if len(self.buffer) < end + 4 + length:
                    return
                body = bytes(self.buffer[end + 4:end + 4 + length])
                del self.buffer[:end + 4 + length]
                method, path = lines[0].split(" ")[:2]
                if path.startswith("/_"):
                    self.transport.write(control(method, path, body))
                    continue
                receipts.append((headers.get("webhook-id", ""), time.time()))
                if verify_every and state["secret"] and len(receipts) % verify_every == 1:
                    verify(body, headers)
                self.transport.write(_OK)

    async def main():
        server = await asyncio.get_running_loop().create_server(Receiver, "127.0.0.1", 0, backlog=1024)
        print(server.sockets[0].getsockname()[1], flush=True)
        await server.serve_forever()

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    asyncio.run(main())


class ReceiverProcess:
    """Starts the receiver in a subprocess; `url` is where to send webhooks."""

    def __init__(self, verify_every: int = 50):
        import httpx

        self.process = subprocess.Popen([sys.executable, __file__, "receiver", str(verify_every)],
                                        stdout=subprocess.PIPE, text=True, preexec_fn=_die_with_parent)
        self.port = int(self.process.stdout.readline())
        self.base = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.base}/hooks"
        self._control = httpx.Client(base_url=self.base, timeout=30)

    def stats(self) -> dict:
        return self._control.get("/_stats").json()

    def receipts(self) -> list[tuple[str, float]]:
        return [tuple(r) for r in self._control.get("/_receipts").json()]

    def reset(self) -> None:
        self._control.post("/_reset")

    def set_secret(self, secret: str) -> None:
        self._control.post("/_secret", content=secret.encode())

    def peak_rss(self) -> int:
        return peak_rss_bytes(self.process.pid)

    def stop(self) -> None:
        self._control.close()
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


if __name__ == "__main__" and sys.argv[1:2] == ["receiver"]:
    _serve_receiver(int(sys.argv[2]) if len(sys.argv) > 2 else 0)
