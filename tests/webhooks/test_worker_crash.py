"""A worker killed mid-delivery: the row's lease ends and another worker sends it, same webhook-id."""

import pytest

from cobrador.webhooks.models import WebhookDelivery
from tests import processes
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import emit, register


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_delivery_is_replaced_and_the_event_arrives_with_the_same_id(api, receiver):
    body = register(api, receiver.url)
    receiver.secrets.append(body["secret"])
    receiver.script(Answer(delay=30))  # the first request is held until the worker is dead
    env = processes.worker_env(COBRADOR_OUTBOX_LEASE_SECONDS="2", COBRADOR_WEBHOOK_ALLOW_PRIVATE="1")
    first = processes.start_worker("--concurrency", "1", env=env)
    second = None
    try:
        processes.wait_ready(first)
        event = emit(api.organization)
        [in_flight] = receiver.wait_for(1, timeout=20)
        assert in_flight.webhook_id == event.public_id
        assert processes.kill(first) == -9
        assert WebhookDelivery.objects.get(event=event).status == "pending"

        second = processes.start_worker("--concurrency", "1", env=env)
        processes.wait_ready(second)
        received = receiver.wait_for(2, timeout=30)
        delivery = processes.wait_until(
            lambda: WebhookDelivery.objects.filter(event=event, status="succeeded").first(), timeout=30,
            message="the delivery to succeed")
    finally:
        processes.kill(first)
        if second is not None:
            assert processes.stop(second) == 0, processes.output(second)
    assert [r.webhook_id for r in received] == [event.public_id, event.public_id]
    assert all(r.verified_with == [body["secret"]] for r in received)
    assert received[0].body == received[1].body
    # The dead worker wrote nothing; the second worker's attempt is the second one made.
    assert delivery.attempt_count == 2
    assert [(a.number, a.status_code, a.succeeded) for a in delivery.attempts.all()] == [(2, 200, True)]
    assert len(receiver.received) == 2
