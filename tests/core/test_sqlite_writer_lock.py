"""core.sqlite3: the threads of one process take turns at SQLite's write lock through `writer_lock`, held
from BEGIN to COMMIT or ROLLBACK (or the connection's close), and released when BEGIN fails."""

import sqlite3
import threading
import time

import pytest
from django.db import connection, transaction

from cobrador.core import clock
from cobrador.core.sqlite3.base import writer_lock
from cobrador.organizations.models import Organization
from tests.concurrency import at_once

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _sqlite_only():
    if connection.vendor != "sqlite":
        pytest.skip("SQLite's single write lock only")


def _free_for_another_thread() -> bool:
    """Whether another thread of this process could take the writer lock now."""
    result = []

    def attempt():
        taken = writer_lock.acquire(blocking=False)
        if taken:
            writer_lock.release()
        result.append(taken)

    thread = threading.Thread(target=attempt)
    thread.start()
    thread.join()
    return result[0]


def _organization(name: str) -> Organization:
    return Organization.objects.create(name=name, mode="test", created_at=clock.now())


def test_a_transaction_holds_the_lock_until_it_commits_rolls_back_or_its_connection_closes():
    assert _free_for_another_thread()
    with transaction.atomic():
        _organization("Committed")
        assert not _free_for_another_thread()
    assert _free_for_another_thread()

    with pytest.raises(RuntimeError), transaction.atomic():
        _organization("Rolled back")
        raise RuntimeError("rolled back")
    assert _free_for_another_thread()

    with transaction.atomic():
        connection.close()  # a connection lost in the middle of a transaction
    assert _free_for_another_thread()
    assert list(Organization.objects.values_list("name", flat=True)) == ["Committed"]


def test_the_threads_of_a_process_take_turns():
    in_transaction, order = threading.Event(), []

    def first():
        with transaction.atomic():
            _organization("First")
            in_transaction.set()
            time.sleep(0.3)
            order.append("first commits")

    def second():
        in_transaction.wait(5)
        started = time.monotonic()
        with transaction.atomic():
            order.append(f"second begins after {time.monotonic() - started:.1f} s")
            _organization("Second")

    at_once(first, second, timeout=10)
    assert order[0] == "first commits" and order[1].startswith("second begins after 0.")
    assert float(order[1].split()[3]) >= 0.2
    assert sorted(Organization.objects.values_list("name", flat=True)) == ["First", "Second"]
    assert _free_for_another_thread()


def test_a_begin_that_times_out_releases_the_lock(settings):
    other = sqlite3.connect(connection.settings_dict["NAME"], isolation_level=None)  # another process's lock
    other.execute("BEGIN IMMEDIATE")
    options = connection.settings_dict["OPTIONS"]
    timeout = options.get("timeout")
    options["timeout"] = 0.2
    try:
        with pytest.raises(sqlite3.OperationalError, match="locked"), transaction.atomic():
            _organization("Never")
        assert _free_for_another_thread()
    finally:
        options["timeout"] = timeout
        other.execute("ROLLBACK")
        other.close()
    with transaction.atomic():
        _organization("Afterwards")
    assert list(Organization.objects.values_list("name", flat=True)) == ["Afterwards"]
