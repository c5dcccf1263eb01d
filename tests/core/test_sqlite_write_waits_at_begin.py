"""core.sqlite3: a write transaction (a drainer's claim, a callback's row) waits for SQLite's write lock at
BEGIN IMMEDIATE, which it retries, runs once, and the connection's busy timeout is put back afterwards."""

import sqlite3
import threading
import time

import pytest
from django.db import OperationalError, connection, transaction

from cobrador.core import clock
from cobrador.organizations.models import Organization

pytestmark = [pytest.mark.django_db(transaction=True)]


def _busy_timeout() -> int:
    with connection.cursor() as cursor:
        return cursor.execute("PRAGMA busy_timeout").fetchone()[0]


def _hold_write_lock(seconds: float, locked: threading.Event) -> None:
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    locked.set()
    time.sleep(seconds)
    other.execute("COMMIT")
    other.close()


@pytest.fixture(autouse=True)
def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's single write lock only")


def test_a_write_waits_for_the_lock_and_the_busy_timeout_is_restored():
    before = _busy_timeout()
    locked = threading.Event()
    holder = threading.Thread(target=_hold_write_lock, args=(0.3, locked))
    holder.start()
    locked.wait(5)
    calls = []

    def write():
        calls.append(time.monotonic())
        return Organization.objects.create(name="Acme", mode="test", created_at=clock.now())

    started = time.monotonic()
    with transaction.atomic():
        write()
    waited = time.monotonic() - started
    holder.join()
    assert 0.25 <= waited < 5
    assert Organization.objects.filter(name="Acme").count() == 1
    # Called once, after the lock was free: the wait was at BEGIN, not a retry of the write (and of the
    # building of its statement) every millisecond.
    assert len(calls) == 1 and calls[0] - started >= 0.25
    assert _busy_timeout() == before


def test_other_errors_are_raised_at_once_and_the_busy_timeout_is_restored():
    before = _busy_timeout()

    def broken():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO no_such_table VALUES (1)")

    with pytest.raises(OperationalError, match="no such table"):
        with transaction.atomic():
            broken()
    assert _busy_timeout() == before
