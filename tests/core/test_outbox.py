"""The outbox drainer in every worker: woken right after commit (NOTIFY on PostgreSQL, a cheap poll on
SQLite), it sends what committed business transactions wrote down."""

import threading
import time

import pytest
from django.db import connection, transaction

from cobrador.core.outbox import drain_forever, drain_until_idle
from cobrador.events.models import Event
from cobrador.events.services import record_event
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import emit


class Drainer:
    def __init__(self):
        self.stop = threading.Event()
        self.thread = threading.Thread(target=drain_forever, args=(self.stop,), daemon=True)

    def __enter__(self):
        self.thread.start()
        time.sleep(0.3)  # let it reach its idle wait
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(10)
        assert not self.thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_committed_event_is_delivered_at_once(api, hook, receiver):  # noqa: F811
    latencies = []
    with Drainer():
        for n in range(5):
            started = time.monotonic()
            event = emit(api.organization)
            [*_, request] = receiver.wait_for(n + 1, timeout=10)
            latencies.append(time.monotonic() - started)
            assert request.webhook_id == event.public_id
            time.sleep(0.3)  # idle again before the next one
    # Woken by the commit, not by the 1 s safety poll (PostgreSQL) or anything slower.
    assert sorted(latencies)[2] < 0.5, latencies
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 5


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_event_is_never_delivered(api, hook, receiver):  # noqa: F811
    with Drainer():
        with pytest.raises(RuntimeError):
            with transaction.atomic():
                record_event(organization=api.organization, type="invoice.paid", data={"id": "in_rolled_back"})
                raise RuntimeError("the business change failed")
        committed = emit(api.organization)
        receiver.wait_for(1, timeout=10)
        time.sleep(0.3)
    assert [r.webhook_id for r in receiver.received] == [committed.public_id]
    assert Event.objects.count() == 1 and WebhookDelivery.objects.count() == 1


def test_drain_until_idle_sends_everything_due(api, hook, receiver):  # noqa: F811
    for _ in range(3):
        emit(api.organization)
    assert drain_until_idle() == 3
    assert len(receiver.wait_for(3)) == 3
    assert drain_until_idle() == 0


@pytest.mark.django_db(transaction=True)
def test_notify_reaches_a_listener_after_commit_only(api, hook):  # noqa: F811
    """Once per transaction that wrote outbox rows (here: two webhook deliveries), after its commit."""
    if connection.vendor != "postgresql":
        pytest.skip("LISTEN/NOTIFY is PostgreSQL's; SQLite workers poll")
    import psycopg

    from cobrador.core.outbox import CHANNEL

    params = connection.get_connection_params()
    for name in ("cursor_factory", "context", "prepare_threshold"):
        params.pop(name, None)
    with psycopg.connect(**params, autocommit=True) as listener:
        listener.execute(f"LISTEN {CHANNEL}")
        with transaction.atomic():
            record_event(organization=api.organization, type="invoice.paid", data={})
            record_event(organization=api.organization, type="invoice.paid", data={})
            assert list(listener.notifies(timeout=0.3, stop_after=1)) == []  # not before commit
        assert len(list(listener.notifies(timeout=5, stop_after=1))) == 1
        assert list(listener.notifies(timeout=0.3)) == []  # one NOTIFY for the transaction
        WebhookEndpoint.objects.update(status="disabled")
        with transaction.atomic():  # no endpoint wants it, no notice: no outbox row, nothing to wake
            record_event(organization=api.organization, type="billing_account.delinquent", data={})
        assert list(listener.notifies(timeout=0.3)) == []


@pytest.mark.django_db(transaction=True)
def test_a_ping_and_a_replay_through_the_api_are_sent_at_once(api, hook, receiver):  # noqa: F811
    with Drainer():
        started = time.monotonic()
        ping = api.post(f"/v1/webhook_endpoints/{hook['id']}/test").json()
        [request] = receiver.wait_for(1, timeout=10)
        assert request.webhook_id == ping["event_id"]
        time.sleep(0.3)
        api.post(f"/v1/webhook_deliveries/{ping['id']}/replay")
        replayed = receiver.wait_for(2, timeout=10)[1]
        elapsed = time.monotonic() - started
    assert replayed.webhook_id == ping["event_id"]
    assert elapsed < 2.5, elapsed
