"""Real `cobrador` subprocesses pointed at the current test database.

Use from tests marked `@pytest.mark.django_db(transaction=True)` (the subprocess only sees committed
rows) and `@pytest.mark.slow`:

    env = worker_env(COBRADOR_OUTBOX_LEASE_SECONDS="2")
    worker = start_worker("--concurrency", "2", env=env)
    try:
        wait_until(lambda: Thing.objects.filter(done=True).exists(), timeout=10)
    finally:
        stop(worker)

`worker_env(**extra)` builds the environment (database URL of the test database, the same data dir
and keys as this process, PYTHONPATH with the repo root so `tests.*` imports, settings module
`tests.queue_settings` unless overridden); `extra` entries override or add variables (None removes).
`start_worker(*args, env=None)` starts `cobrador worker ARGS` and `wait_ready(proc)` waits until it
polls the queue; `start(*args, env=None)` starts any command;
`run(*args, env=None, timeout=30)` runs one to completion. `stop(proc)` sends SIGTERM (SIGKILL after
a timeout) and returns the exit status; `kill(proc)` is kill -9. `output(proc)` is what it printed.
`wait_until(predicate, timeout, interval=0.05)` polls until the predicate is truthy, else fails.
`HEARTBEAT_ENV` makes a subprocess's job runs beat every 0.2 s; `wait_until_abandonable(job_name, after)`
waits until a killed subprocess's `running` JobRun has had no heartbeat for `after` seconds (set the test's
settings.JOB_ABANDONED_AFTER to `after`), so the next run marks it abandoned and takes over.
`restart_postgres()` cuts every connection to the test database (pg_terminate_backend: what its clients
see of a server restart) and waits until this process can connect again. The server and the suite's other
xdist worker are shared, so that is the default; COBRADOR_TEST_PG_FAULT=restart restarts the server itself
(`pg_ctlcluster ... restart`), for a run of the fault tests alone (bench/faults.py restarts it too).
"""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent


def database_url() -> str:
    """The URL of the database this test process is using (the test database, not the configured one)."""
    from django.db import connection

    settings_dict = connection.settings_dict
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        name = str(settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            raise RuntimeError("subprocesses need an on-disk SQLite test database (settings set TEST NAME)")
        return f"sqlite:///{Path(name).resolve()}"
    if engine == "django.db.backends.postgresql":
        user = quote(settings_dict.get("USER") or "", safe="")
        password = settings_dict.get("PASSWORD") or ""
        auth = f"{user}:{quote(password, safe='')}@" if password else (f"{user}@" if user else "")
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(settings_dict['NAME'], safe='')}"
    raise RuntimeError(f"no subprocess URL for database engine {engine}")


def worker_env(**extra) -> dict:
    """The environment for a `cobrador` subprocess that works on this test process's database."""
    from django.conf import settings

    env = dict(os.environ)
    python_path = [str(REPO_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env.update({
        "COBRADOR_DATABASE_URL": database_url(),
        "COBRADOR_DATA_DIR": str(settings.DATA_DIR),
        "COBRADOR_SECRET_KEY": settings.SECRET_KEY,
        "COBRADOR_ENCRYPTION_KEY": settings.ENCRYPTION_KEY,
        "DJANGO_SETTINGS_MODULE": "tests.queue_settings",
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
    })
    if settings.WEBHOOK_ALLOW_PRIVATE:  # tests allow loopback receivers (see tests/conftest.py)
        env["COBRADOR_WEBHOOK_ALLOW_PRIVATE"] = "1"
    if settings.PROVIDER_ALLOW_PRIVATE:  # and loopback provider fakes
        env["COBRADOR_PROVIDER_ALLOW_PRIVATE"] = "1"
    # The provider fakes a test points the adapters at (tests/gateways/conftest.py: use_fakes).
    for name in ("PAGARME_BASE_URL", "PAGARME_JWKS_URL", "KOBANA_BASE_URL"):
        if getattr(settings, name):
            env[f"COBRADOR_{name}"] = getattr(settings, name)
    for name, value in extra.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = str(value)
    return env


def _cobrador_command() -> list[str]:
    script = Path(sys.executable).parent / "cobrador"
    return [str(script)] if script.exists() else [sys.executable, "-m", "cobrador.cli"]


def start(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start `cobrador ARGS` in the background; its stdout and stderr go to a temporary file."""
    with tempfile.NamedTemporaryFile(prefix="cobrador-", suffix=".log", delete=False) as log:
        proc = subprocess.Popen([*_cobrador_command(), *args], env=env if env is not None else worker_env(),
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
    proc.log_path = log.name
    return proc


def start_worker(*args: str, env: dict | None = None) -> subprocess.Popen:
    """Start `cobrador worker ARGS` (tasks, schedules and the outbox drainer). It writes a heartbeat
    file at every poll, so `wait_ready(proc)` can tell when it is up."""
    with tempfile.NamedTemporaryFile(prefix="cobrador-heartbeat-", delete=False) as heartbeat:
        pass
    os.unlink(heartbeat.name)  # the worker creates it at its first poll
    proc = start("worker", "--heartbeat-file", heartbeat.name, *args, env=env)
    proc.heartbeat_path = heartbeat.name
    return proc


def wait_ready(proc: subprocess.Popen, timeout: float = 30) -> None:
    """Wait until a worker from `start_worker` has started polling the queue."""
    def polling():
        if proc.poll() is not None:
            raise AssertionError(f"the worker exited with status {proc.returncode}:\n{output(proc)}")
        return os.path.exists(proc.heartbeat_path)

    wait_until(polling, timeout, message="the worker to start polling")


def run(*args: str, env: dict | None = None, timeout: float = 30) -> subprocess.CompletedProcess:
    """Run `cobrador ARGS` to completion and capture its output (text)."""
    return subprocess.run([*_cobrador_command(), *args], env=env if env is not None else worker_env(),
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def output(proc: subprocess.Popen) -> str:
    """What a process started with `start` has printed so far (stdout and stderr together)."""
    try:
        return Path(proc.log_path).read_text(errors="replace")
    except (AttributeError, FileNotFoundError):
        return ""


def stop(proc: subprocess.Popen, timeout: float = 10) -> int:
    """SIGTERM, wait up to `timeout` seconds, then SIGKILL. Returns the exit status. Safe to call twice."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    _remove_heartbeat(proc)
    return proc.wait(timeout=10)


def kill(proc: subprocess.Popen) -> int:
    """kill -9: the process gets no chance to clean up."""
    if proc.poll() is None:
        proc.kill()
    _remove_heartbeat(proc)
    return proc.wait(timeout=10)


def _remove_heartbeat(proc: subprocess.Popen) -> None:
    path = getattr(proc, "heartbeat_path", None)
    if path:
        Path(path).unlink(missing_ok=True)


def wait_until(predicate, timeout: float, interval: float = 0.05, message=""):
    """Poll `predicate` until it returns something truthy (returned), or fail after `timeout` seconds.
    `message` may be a callable, called only on failure (to show state as it was then)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            if callable(message):
                message = message()
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}")
        time.sleep(interval)


HEARTBEAT_ENV = {"COBRADOR_JOB_HEARTBEAT_SECONDS": "0.2"}


def wait_until_abandonable(job_name: str, after: float, timeout: float = 30) -> None:
    from cobrador.core import clock
    from cobrador.jobs.models import JobRun

    def stale():
        beats = list(JobRun.objects.filter(job_name=job_name, status="running").values_list("heartbeat_at",
                                                                                          flat=True))
        return all(beat < clock.wall_now() - timedelta(seconds=after + 0.1) for beat in beats if beat)

    wait_until(stale, timeout, interval=0.1, message=f"the killed {job_name} run's heartbeat to go stale")


DOWN_SECONDS = 3.0


def restart_postgres(timeout: float = 90) -> float:
    """Restart PostgreSQL (or cut the test database's connections, see above); returns the seconds until
    this process could connect again."""
    from django.db import OperationalError, connection, connections

    started = time.monotonic()
    if os.environ.get("COBRADOR_TEST_PG_FAULT", "terminate") == "terminate":
        # As long as a restart keeps the server away: every connection to the test database, and every
        # reconnection meanwhile, is cut for `DOWN_SECONDS`.
        with connection.cursor() as cursor:
            while time.monotonic() - started < DOWN_SECONDS:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()")
                time.sleep(0.01)
    else:
        version = sorted(os.listdir("/etc/postgresql"))[-1]
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True,
                       timeout=timeout, capture_output=True)
    connections.close_all()

    def connects():
        try:
            connection.ensure_connection()
            with connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            return True
        except OperationalError:
            connections.close_all()
            return False

    wait_until(connects, timeout, interval=0.2, message="PostgreSQL to accept connections again")
    return time.monotonic() - started


def free_port() -> int:
    """A loopback TCP port nobody listens on now (for a server a test starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
