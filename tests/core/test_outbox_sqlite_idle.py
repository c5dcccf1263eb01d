"""An idle drainer on SQLite reads no table until another connection commits (PRAGMA data_version),
then looks at once; and it looks every SQLITE_RECHECK_SECONDS anyway, for rows that fall due with time."""

import threading
import time
from itertools import pairwise

import pytest
from django.db import connection

from cobrador.core import clock, outbox
from cobrador.organizations.models import Organization
from tests.processes import wait_until

pytestmark = [pytest.mark.django_db(transaction=True)]

passes: list[float] = []


def count_pass() -> int:
    """A drainer that finds nothing to do; it records when it looked."""
    passes.append(time.monotonic())
    return 0


@pytest.fixture
def drainer(request, monkeypatch):
    """A drain_forever thread with `count_pass` as its only drainer; request.param: the recheck seconds."""
    if connection.vendor != "sqlite":
        pytest.skip("PostgreSQL workers wait for NOTIFY (tests/core/test_outbox.py)")
    monkeypatch.setattr(outbox, "SQLITE_RECHECK_SECONDS", request.param)
    passes.clear()
    stop = threading.Event()
    thread = threading.Thread(target=outbox.drain_forever, args=(stop, [f"{__name__}.count_pass"]), daemon=True)
    thread.start()
    wait_until(lambda: passes, timeout=10)
    yield
    stop.set()
    thread.join(10)
    assert not thread.is_alive()


@pytest.mark.parametrize("drainer", [5.0], indirect=True)
def test_an_idle_drainer_looks_again_only_after_another_connection_commits(drainer):
    time.sleep(0.6)
    assert len(passes) == 1  # polling a table every 0.1 s, it would have looked six more times
    committed = time.monotonic()
    Organization.objects.create(name="Acme", mode="test", created_at=clock.now())
    wait_until(lambda: len(passes) == 2, timeout=10)
    assert passes[1] - committed < 1.0  # woken by the commit, not by the 5 s recheck


@pytest.mark.parametrize("drainer", [0.5], indirect=True)
def test_with_nothing_committed_it_still_looks_at_every_recheck(drainer):
    time.sleep(2.0)
    assert 3 <= len(passes) <= 6, [round(b - a, 2) for a, b in pairwise(passes)]
