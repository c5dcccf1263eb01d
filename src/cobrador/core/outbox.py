"""Outbox drainers: the loops in every worker that do what business transactions wrote down (charge
the invoices they made, deliver webhooks, send e-mails and notices), in batches, right after commit.

Each drainer runs in its own thread of the worker (`start_drainers`). A transaction that wrote outbox
rows wakes them once it commits: on PostgreSQL one NOTIFY reaches every worker's LISTEN connections
(and a woken drainer takes the NOTIFYs of a burst of commits in one pass); on SQLite an idle drainer
reads `PRAGMA data_version` every OUTBOX_POLL_SECONDS (no table is read; it changes when another
connection commits) and looks for work when it changed, and every SQLITE_RECHECK_SECONDS anyway for
rows that fall due with time (a retry's backoff, a dead worker's lease). Scheduled sweeps run the same
drain functions as a safety net.
"""

import logging
import threading
import time
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections, connection, transaction

from cobrador.core import stopping

logger = logging.getLogger(__name__)

CHANNEL = "cobrador_outbox"
SQLITE_RECHECK_SECONDS = 1.0
# Each drainer claims and sends one batch of due rows and returns how many it handled.
DRAINERS = ["cobrador.payments.charging.charge_queued", "cobrador.webhooks.delivery.deliver_batch",
            "cobrador.notifications.delivery.deliver_batch"]


def _notify():
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"NOTIFY {CHANNEL}")


def wake_outbox_after_commit() -> None:
    """NOTIFY the drainers once this transaction commits: once per transaction, however many outbox
    writes ask (every NOTIFY wakes every drainer of every worker for a pass over its table)."""
    if connection.vendor != "postgresql":
        return  # SQLite drainers poll
    if connection.in_atomic_block and any(func is _notify for _, func, _ in connection.run_on_commit):
        return
    transaction.on_commit(_notify)


def _drainers(paths=None):
    functions = []
    for path in DRAINERS if paths is None else paths:
        module_name, _, attr = path.rpartition(".")
        functions.append(getattr(import_module(module_name), attr))
    return functions


def _sqlite_data_version():
    """(this connection, its PRAGMA data_version): the number moves when another connection commits.
    None when it cannot be read (the next pass finds out why)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA data_version")
            return id(connection.connection), cursor.fetchone()[0]
    except Exception:  # noqa: BLE001 - a broken connection: let a pass run and report it
        return None


class _Waiter:
    """Waits for work: a NOTIFY on PostgreSQL; on SQLite, a commit by another connection (or
    SQLITE_RECHECK_SECONDS)."""

    def __init__(self):
        self.listen_conn = None
        self.seen_version = None  # SQLite: the database's data_version when the last pass began
        if connection.vendor == "postgresql":
            import psycopg

            params = connection.get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            params.pop("prepare_threshold", None)
            try:
                self.listen_conn = psycopg.connect(**params, autocommit=True)
                self.listen_conn.execute(f"LISTEN {CHANNEL}")
            except Exception:
                logger.warning("LISTEN unavailable; polling only", exc_info=True)
                self.listen_conn = None

    def pass_begins(self) -> None:
        if connection.vendor == "sqlite":
            self.seen_version = _sqlite_data_version()

    def wait(self, stop: threading.Event, seconds: float) -> None:
        if connection.vendor == "sqlite":
            self._wait_for_a_commit(stop, seconds)
            return
        if self.listen_conn is None:
            stop.wait(seconds)
            return
        try:
            for _ in self.listen_conn.notifies(timeout=seconds, stop_after=1):
                pass
            # The NOTIFYs of a burst of commits that arrived meanwhile: one pass drains for all of them.
            for _ in self.listen_conn.notifies(timeout=0.001):
                pass
        except Exception:
            logger.warning("LISTEN connection lost; polling", exc_info=True)
            self.listen_conn = None
            stop.wait(seconds)

    def _wait_for_a_commit(self, stop: threading.Event, seconds: float) -> None:
        """Every `seconds`, one PRAGMA: return once another connection has committed since the pass
        began (it may have written work), or after SQLITE_RECHECK_SECONDS. An idle worker thus reads
        no table ten times a second per drainer."""
        recheck_at = time.monotonic() + SQLITE_RECHECK_SECONDS
        while not stop.wait(seconds):
            version = _sqlite_data_version()
            if version is None or version != self.seen_version or time.monotonic() >= recheck_at:
                return

    def close(self):
        if self.listen_conn is not None:
            self.listen_conn.close()


def drain_forever(stop: threading.Event, paths: list[str] | None = None) -> None:
    """Run the drainers (`paths`, default every one in DRAINERS) until `stop` is set; sleep only when
    none of them found work."""
    drainers = _drainers(paths)
    waiter = _Waiter()
    idle_wait = settings.OUTBOX_POLL_SECONDS if connection.vendor != "postgresql" else 1.0
    try:
        # core.stopping: the worker's SIGTERM stops the drainer with its tasks, not after them.
        while not stop.is_set() and not stopping.requested():
            waiter.pass_begins()
            handled = 0
            for drain in drainers:
                try:
                    handled += drain()
                except Exception:
                    logger.exception("outbox drainer %s failed; retrying", getattr(drain, "__name__", drain))
                    close_old_connections()
                    stop.wait(1.0)
            if not handled:
                waiter.wait(stop, idle_wait)
    finally:
        waiter.close()
        connection.close()


def start_drainers(stop: threading.Event) -> list[threading.Thread]:
    """One drain_forever thread per drainer (`cobrador worker`): a webhook is not held up while the
    notification drainer renders and sends a batch of e-mails, nor the other way round."""
    threads = []
    for path in DRAINERS:
        thread = threading.Thread(target=drain_forever, args=(stop, [path]), daemon=True,
                                  name=f"outbox-{path.rsplit('.', 2)[-2]}")
        thread.start()
        threads.append(thread)
    return threads


def drain_until_idle() -> int:
    """Run every drainer until none finds due work (used by `cobrador worker --drain` and tests)."""
    total = 0
    drainers = _drainers()
    while not stopping.requested():
        handled = sum(drain() for drain in drainers)
        total += handled
        if not handled:
            return total
    return total
