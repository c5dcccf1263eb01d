"""Django's SQLite backend, with the write lock taken eagerly at BEGIN (settings: ENGINE
"cobrador.core.sqlite3").

Every transaction begins IMMEDIATE, taking SQLite's single write lock at BEGIN. When another
connection holds it, SQLite's busy handler sleeps longer and longer between tries (1, 2, 5, 10 ...
up to 100 ms a time), so under a steady stream of short write transactions from several processes
(API requests, the worker's charging and delivery batches) a waiter kept sleeping past the moments
the lock was free: a sign-up whose transactions take a few milliseconds waited 100-200 ms for each.
Here BEGIN is tried again every millisecond or two instead, for as long as the configured timeout:
nothing has happened before BEGIN succeeds, so trying it again is always safe. Statements outside a
transaction keep SQLite's own busy handler and its timeout.

The threads of one process wait for each other on `writer_lock` (a Python lock, held from BEGIN to
COMMIT or ROLLBACK) rather than each retrying BEGIN: only one thread per process is ever in that loop,
and the others sleep without spending the CPU that the lock's holder needs to finish sooner.

`cobrador worker` tries more often (`prefer_this_process`): under a stream of API writes its batches,
which finish what those requests started (charging a sign-up's invoice, delivering its webhooks),
take the lock ahead of new requests instead of queueing behind them.
"""

import threading
import time

from django.db.backends.sqlite3 import base

# The busy timeout while BEGIN is retried: short, so the retry loop (not SQLite's backoff) does the waiting.
RETRY_BUSY_MS = 1
# Seconds between BEGIN tries in a preferred process (busy timeout 0: the loop sleeps, not SQLite).
_preferred_retry_seconds: float | None = None


def prefer_this_process(retry_seconds: float = 0.0005) -> None:
    """Try BEGIN every `retry_seconds` in this process rather than every millisecond: its transactions
    win the write lock over other processes' most of the time it is contended."""
    global _preferred_retry_seconds
    _preferred_retry_seconds = retry_seconds


def retry_pause() -> tuple[int, float]:
    """(busy timeout in ms, sleep in seconds) between tries of a write that found the database locked."""
    if _preferred_retry_seconds is not None:
        return 0, _preferred_retry_seconds
    return RETRY_BUSY_MS, 0.0


# Held by the thread of this process whose connection has (or is about to take) SQLite's write lock,
# from BEGIN to COMMIT or ROLLBACK.
writer_lock = threading.RLock()


class DatabaseWrapper(base.DatabaseWrapper):
    holds_writer_lock = False

    def _start_transaction_under_autocommit(self):
        begin = f"BEGIN {self.transaction_mode}" if self.transaction_mode else "BEGIN"
        raw = self.connection
        timeout_ms = int(1000 * float(self.settings_dict["OPTIONS"].get("timeout", 5)))
        deadline = time.monotonic() + timeout_ms / 1000
        if not writer_lock.acquire(timeout=timeout_ms / 1000):
            raise self.Database.OperationalError("database is locked (by another thread of this process)")
        self.holds_writer_lock = True
        busy_ms, pause = retry_pause()
        raw.execute(f"PRAGMA busy_timeout = {busy_ms}")
        try:
            while True:
                try:
                    raw.execute(begin)
                    return
                except self.Database.OperationalError as exc:
                    if "locked" not in str(exc) or time.monotonic() > deadline:
                        raise
                    if pause:
                        time.sleep(pause)
        except BaseException:  # no transaction: nothing will commit or roll back to release the lock
            self._release_writer_lock()
            raise
        finally:
            raw.execute(f"PRAGMA busy_timeout = {timeout_ms}")

    def _release_writer_lock(self):
        if self.holds_writer_lock:
            self.holds_writer_lock = False
            writer_lock.release()

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writer_lock()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writer_lock()

    def _close(self):
        try:
            return super()._close()
        finally:
            self._release_writer_lock()
