"""The long-running processes: `cobrador up` (everything on one machine), `cobrador web` (granian
serving the WSGI app) and `cobrador worker` (django-ox's queue and schedules plus the outbox drainer).

`cobrador.cli` imports this module once Django is set up.
"""

import gc
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

from django.conf import settings
from django.core.management import call_command
from django.db import connection

from cobrador.core.commandline import CommandFailed, check_encryption_key, migrate
from cobrador.core.outbox import drain_until_idle, start_drainers
from cobrador.core.sqlite3.base import prefer_this_process
from cobrador.notifications.email_config import describe as describe_mailers
from cobrador.organizations.commands import bootstrap_first_run


def _granian_command(host: str, port: int, workers: int) -> list[str]:
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--host", host, "--port", str(port),
            "--workers", str(workers), "--blocking-threads", "4", "--log-level", "warning",
            "cobrador.wsgi:application"]


def _run_web_children(commands: list[list[str]]) -> int:
    """`_run_children` for a set that includes granian: its worker processes keep their Prometheus counters
    in files of one directory, summed at scrape time (prometheus-client's multi-process mode); a new
    directory per start, so no counter of a previous run is added in."""
    directory = tempfile.mkdtemp(prefix="cobrador-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    try:
        return _run_children(commands)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _collectstatic() -> None:
    try:
        call_command("collectstatic", interactive=False, verbosity=0)
    except OSError as exc:
        raise CommandFailed(f"cannot write the static files to {settings.STATIC_ROOT} "
                            f"({exc.strerror or type(exc).__name__}): make the data directory writable by this "
                            "user or set COBRADOR_DATA_DIR to a writable directory") from None


def _run_children(commands: list[list[str]]) -> int:
    """Run child processes until one exits or we get SIGTERM/SIGINT; then stop them all cleanly."""
    children = [subprocess.Popen(cmd) for cmd in commands]
    stopping = threading.Event()

    def _stop(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    exit_code = 0
    while not stopping.is_set():
        for child in children:
            if child.poll() is not None:
                print(f"cobrador: a process exited with status {child.returncode}; stopping", file=sys.stderr)
                exit_code = child.returncode or 1
                stopping.set()
        stopping.wait(0.5)
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 30
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.kill()
    return exit_code


def up(args) -> int:
    migrate()
    check_encryption_key()
    _collectstatic()
    first_run = bootstrap_first_run()
    base = f"http://{args.host}:{args.port}"
    print("cobrador is starting")
    print(f"  database      {settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
          f"{settings.DATABASES['default']['NAME']}")
    print(f"  data dir      {settings.DATA_DIR}")
    print(f"  e-mail        {describe_mailers(settings.MAILERS)}")
    print(f"  API           {base}/v1/")
    print(f"  API docs      {base}/v1/docs")
    print(f"  admin         {base}/admin/")
    for line in first_run:
        print(line)
    print("Stop with Ctrl-C.", flush=True)
    worker_command = [sys.executable, "-m", "cobrador.cli", "worker", "--concurrency", str(args.concurrency)]
    return _run_web_children([_granian_command(args.host, args.port, args.web_workers), worker_command])


def web(args) -> int:
    check_encryption_key()
    _collectstatic()
    print(f"cobrador web on http://{args.host}:{args.port}", flush=True)
    return _run_web_children([_granian_command(args.host, args.port, args.workers)])


def worker(args) -> int:
    check_encryption_key()
    # What is loaded by now lives as long as the process: keep the garbage collector from walking it on
    # every full collection (a sweep batch allocates hundreds of thousands of objects).
    gc.freeze()
    if args.drain:
        drain_until_idle()
        call_command("ox_worker", batch=True, concurrency=1, interval=0.1, verbosity=0)
        drain_until_idle()
        return 0
    if connection.vendor == "sqlite":
        prefer_this_process()  # finishing what requests started comes before starting new ones
    stop = threading.Event()
    drainers = start_drainers(stop)
    try:
        # django-ox runs the queue and fires the recurring schedules; it handles SIGTERM itself
        # (finishes what it is running, then returns).
        options = {"heartbeat_file": args.heartbeat_file} if args.heartbeat_file else {}
        call_command("ox_worker", concurrency=args.concurrency, interval=args.interval, verbosity=0, **options)
    finally:
        stop.set()
        for drainer in drainers:
            drainer.join(timeout=30)
    return 0
