"""Deliveries are outbox rows claimed by pushing next_attempt_at one lease ahead (claim_token)."""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.db import connection, transaction

from cobrador.events.services import EventDraft, record_events
from cobrador.webhooks.delivery import Outcome, claim_due, deliver_due, record_outcomes
from cobrador.webhooks.models import WebhookDelivery
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import delivery_for, emit, register


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(api, hook, clock, settings):
    settings.OUTBOX_LEASE_SECONDS = 60
    event = emit(api.organization)
    token, rows = claim_due(now=clock.now())
    assert [r.event_id for r in rows] == [event.pk]
    delivery = delivery_for(event, hook)
    assert delivery.claim_token == token
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=60)
    assert delivery.attempt_count == 1
    assert claim_due(now=clock.now())[1] == []
    clock.advance(timedelta(seconds=59))
    assert claim_due(now=clock.now())[1] == []
    clock.advance(timedelta(seconds=1))
    second_token, again = claim_due(now=clock.now())
    assert [r.pk for r in again] == [delivery.pk] and second_token != token


def test_a_dead_claimants_row_is_sent_by_another_with_the_same_webhook_id(api, hook, receiver, clock):
    """A worker claims and dies before sending; after the lease another worker sends it."""
    event = emit(api.organization)
    dead_token, rows = claim_due(now=clock.now())
    assert len(rows) == 1
    assert deliver_due() == 0  # leased
    clock.advance(timedelta(seconds=61))
    assert deliver_due() == 1
    [request] = receiver.wait_for(1)
    assert request.webhook_id == event.public_id
    assert request.verified_with == [hook["secret"]]
    delivery = delivery_for(event, hook)
    assert delivery.status == "succeeded"
    # The dead worker coming back late with a failure cannot undo the success.
    record_outcomes(dead_token, [(rows[0], Outcome(status_code=500, error=""), clock.now())])
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.next_attempt_at is None
    assert sorted(a.number for a in delivery.attempts.all()) == [1, 2]


def test_a_replay_during_a_lease_wins_over_the_old_claim(api, hook, receiver, clock):
    event = emit(api.organization)
    old_token, rows = claim_due(now=clock.now())
    delivery = delivery_for(event, hook)
    api.post(f"/v1/webhook_deliveries/{delivery.public_id}/replay")
    record_outcomes(old_token, [(rows[0], Outcome(status_code=500), clock.now())])
    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.next_attempt_at == clock.now()
    assert deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


def test_the_lease_is_longer_than_the_timeout():
    """Otherwise a slow but live send could be taken over and sent twice by default."""
    from django.conf import settings

    assert settings.OUTBOX_LEASE_SECONDS > settings.WEBHOOK_TIMEOUT_SECONDS + 5


@pytest.mark.django_db(transaction=True)
def test_concurrent_drainers_send_each_delivery_once(api, receiver, settings):
    settings.OUTBOX_LEASE_SECONDS = 120
    body = register(api, receiver.url)
    receiver.secrets.append(body["secret"])
    receiver.default = Answer(delay=0.01)
    with transaction.atomic():
        events = record_events([EventDraft(api.organization, "invoice.created", {"n": n}) for n in range(120)])
    barrier = threading.Barrier(4)
    errors = []

    def drain():
        try:
            barrier.wait()
            while deliver_due(max_batches=1):  # small batches so the drainers interleave
                pass
        except Exception as exc:  # noqa: BLE001  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    import cobrador.webhooks.delivery as delivery_module

    original = delivery_module.BATCH_SIZE
    delivery_module.BATCH_SIZE = 10
    try:
        threads = [threading.Thread(target=drain) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        delivery_module.BATCH_SIZE = original
    assert errors == []
    received = receiver.wait_for(120)
    counts = Counter(r.webhook_id for r in received)
    assert set(counts) == {e.public_id for e in events}
    assert max(counts.values()) == 1, [k for k, v in counts.items() if v > 1]
    assert all(r.verified_with == [body["secret"]] for r in received)
    assert WebhookDelivery.objects.filter(status="succeeded", attempt_count=1).count() == 120
