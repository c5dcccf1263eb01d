"""Delivering events to real receivers on loopback, verified with the `standardwebhooks` package."""

import json
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction

from cobrador.events.models import Event
from cobrador.events.services import EventDraft, record_events
from cobrador.webhooks import delivery as delivery_module
from cobrador.webhooks.delivery import RETRY_DELAYS, deliver_due
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import delivery_for, emit, endpoint_row, register


def test_a_delivery_follows_the_standard_webhooks_spec(api, hook, receiver):
    event = emit(api.organization, "invoice.paid", {"id": "in_1", "amount_due": 4990, "currency": "BRL"})
    assert deliver_due() == 1
    [request] = receiver.wait_for(1)
    assert request.verified_with == [hook["secret"]]
    assert request.path == "/hooks"
    assert request.headers["content-type"] == "application/json"
    assert request.webhook_id == event.public_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"].startswith("v1,")
    assert request.json == {"id": event.public_id, "type": "invoice.paid",
                            "timestamp": request.json["timestamp"],
                            "data": {"id": "in_1", "amount_due": 4990, "currency": "BRL"}}
    delivery = delivery_for(event, hook)
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("succeeded", 1, 200)
    assert delivery.next_attempt_at is None and delivery.claim_token == ""


def test_a_tampered_body_does_not_verify(api, hook, receiver):
    """The receiver's check is real: it refuses a signature made with another secret."""
    receiver.secrets[:] = ["whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"]
    emit(api.organization)
    deliver_due()
    [request] = receiver.wait_for(1)
    assert request.verified_with == []


def test_events_fan_out_only_to_subscribed_enabled_endpoints(api, other_api, receiver):
    everything = register(api, receiver.url + "?all", events=["*"])
    invoices = register(api, receiver.url + "?invoices", events=["invoice.paid", "invoice.created"])
    payments = register(api, receiver.url + "?payments", events=["payment.failed"])
    disabled = register(api, receiver.url + "?disabled", events=["*"])
    theirs = register(other_api, receiver.url + "?theirs", events=["*"])
    api.patch(f"/v1/webhook_endpoints/{disabled['id']}", {"status": "disabled"})

    paid = emit(api.organization, "invoice.paid")
    failed = emit(api.organization, "payment.failed")
    renewed = emit(api.organization, "subscription.renewed")
    assert deliver_due() == 5
    receiver.wait_for(5)
    time.sleep(0.2)  # anything wrongly sent would arrive now
    got = sorted((r.path.split("?")[1], r.json["type"]) for r in receiver.received)
    assert got == sorted([("all", "invoice.paid"), ("all", "payment.failed"), ("all", "subscription.renewed"),
                          ("invoices", "invoice.paid"), ("payments", "payment.failed")])
    by_endpoint = {e["id"]: set(WebhookDelivery.objects.filter(endpoint__public_id=e["id"])
                                .values_list("event__public_id", flat=True))
                   for e in (everything, invoices, payments, disabled, theirs)}
    assert by_endpoint == {everything["id"]: {paid.public_id, failed.public_id, renewed.public_id},
                           invoices["id"]: {paid.public_id}, payments["id"]: {failed.public_id},
                           disabled["id"]: set(), theirs["id"]: set()}


def test_record_events_fans_out_many_events_in_bulk(api, hook, receiver):
    with transaction.atomic():
        events = record_events([EventDraft(api.organization, "invoice.created", {"n": n}) for n in range(30)])
    assert WebhookDelivery.objects.count() == 30
    assert deliver_due() == 30
    received = receiver.wait_for(30)
    assert sorted(r.webhook_id for r in received) == sorted(e.public_id for e in events)
    assert all(r.verified_with == [hook["secret"]] for r in received)
    assert WebhookDelivery.objects.filter(status="succeeded").count() == 30


def test_an_event_never_gets_two_deliveries_to_one_endpoint(api, hook):
    from cobrador.webhooks.services import fan_out_to_endpoints

    event = emit(api.organization)
    with transaction.atomic():
        fan_out_to_endpoints([event])  # a repeated fan-out is a no-op (unique per event and endpoint)
    assert WebhookDelivery.objects.filter(event=event).count() == 1


def test_deliveries_are_sent_concurrently(api, receiver, settings):
    """Eight receivers each taking 0.5 s are done in far less than 8 x 0.5 s."""
    body = register(api, receiver.url)
    receiver.default = Answer(delay=0.5)
    for _ in range(8):
        emit(api.organization)
    started = time.monotonic()
    assert deliver_due() == 8
    elapsed = time.monotonic() - started
    assert elapsed < 3.0, elapsed  # one after another would take 4 s
    assert WebhookDelivery.objects.filter(endpoint__public_id=body["id"], status="succeeded").count() == 8


def test_rotation_old_and_new_secret_both_verify_for_24_hours(api, hook, receiver, clock):
    old = hook["secret"]
    new = api.post(f"/v1/webhook_endpoints/{hook['id']}/rotate_secret").json()["secret"]
    receiver.secrets.append(new)

    emit(api.organization)
    deliver_due()
    [during] = receiver.wait_for(1)
    assert sorted(during.verified_with) == sorted([old, new])
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    clock.advance(timedelta(hours=23, minutes=59))
    emit(api.organization)
    deliver_due()
    assert sorted(receiver.wait_for(2)[1].verified_with) == sorted([old, new])

    clock.advance(timedelta(minutes=2))
    emit(api.organization)
    deliver_due()
    after = receiver.wait_for(3)[2]
    assert after.verified_with == [new]
    assert len(after.headers["webhook-signature"].split(" ")) == 1


def test_a_second_rotation_drops_the_first_secret(api, hook, receiver, clock):
    second = api.post(f"/v1/webhook_endpoints/{hook['id']}/rotate_secret").json()["secret"]
    third = api.post(f"/v1/webhook_endpoints/{hook['id']}/rotate_secret").json()["secret"]
    receiver.secrets.extend([second, third])
    emit(api.organization)
    deliver_due()
    [request] = receiver.wait_for(1)
    assert sorted(request.verified_with) == sorted([second, third])


def _walk_attempts(clock, delivery, receiver, expected_requests):
    """Advance to just before the next attempt (nothing is sent), then just past it (one is sent)."""
    delivery.refresh_from_db()
    last_attempt = delivery.attempts.order_by("-number").first()
    wait = delivery.next_attempt_at - clock.now()
    clock.advance(wait - timedelta(milliseconds=1))
    assert deliver_due() == 0
    clock.advance(timedelta(milliseconds=2))
    assert deliver_due() == 1
    receiver.wait_for(expected_requests)
    return wait, last_attempt


def test_the_retry_schedule_under_the_clock(api, hook, receiver, clock):
    receiver.default = Answer(status=500, body=b"down")
    event = emit(api.organization)
    started = clock.now()
    assert deliver_due() == 1
    delivery = delivery_for(event, hook)
    waits = []
    for n, nominal in enumerate(RETRY_DELAYS, start=2):
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        wait = delivery.next_attempt_at - clock.now()
        assert nominal * 0.9 <= wait <= nominal * 1.1, (n, wait, nominal)
        waits.append(wait)
        clock.advance(wait - timedelta(milliseconds=1))
        assert deliver_due() == 0, f"attempt {n} was sent early"
        clock.advance(timedelta(milliseconds=2))
        assert deliver_due() == 1, f"attempt {n} was not sent when due"
    delivery.refresh_from_db()
    assert delivery.status == "failed"
    assert delivery.attempt_count == 10 == len(RETRY_DELAYS) + 1
    assert delivery.next_attempt_at is None and delivery.finished_at == clock.now()
    # The whole schedule spans about 3 days 3.6 hours.
    assert timedelta(days=2, hours=20) < clock.now() - started < timedelta(days=3, hours=12)
    clock.advance(timedelta(days=3))
    assert deliver_due() == 0
    requests = receiver.wait_for(10)
    assert len(requests) == 10
    assert {r.webhook_id for r in requests} == {event.public_id}
    assert all(r.verified_with == [hook["secret"]] for r in requests)
    attempts = list(delivery.attempts.all())
    assert [a.number for a in attempts] == list(range(1, 11))
    assert all(a.status_code == 500 and not a.succeeded and a.response_body == "down" for a in attempts)


def test_jitter_spreads_retries(api, receiver, clock):
    register(api, receiver.url)
    receiver.default = Answer(status=500)
    for _ in range(20):
        emit(api.organization)
    deliver_due()
    waits = {d.next_attempt_at - clock.now() for d in WebhookDelivery.objects.all()}
    assert len(waits) > 10
    assert all(timedelta(seconds=4.5) <= w <= timedelta(seconds=5.5) for w in waits)


def test_success_after_failures_ends_the_schedule(api, hook, receiver, clock):
    receiver.script(Answer(status=500), Answer(status=502), Answer(status=204, body=b""))
    event = emit(api.organization)
    deliver_due()
    delivery = delivery_for(event, hook)
    for expected in (2, 3):
        _walk_attempts(clock, delivery, receiver, expected)
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count, delivery.last_status_code) == ("succeeded", 3, 204)
    assert [a.succeeded for a in delivery.attempts.all()] == [False, False, True]
    assert endpoint_row(hook).failing_since is None


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_a_redirect_is_a_failure_and_is_not_followed(api, receiver, second_receiver, clock, status):
    body = register(api, receiver.url)
    receiver.default = Answer(status=status, headers={"Location": second_receiver.url})
    event = emit(api.organization)
    deliver_due()
    receiver.wait_for(1)
    time.sleep(0.2)
    assert second_receiver.received == []
    delivery = delivery_for(event, body)
    assert delivery.status == "pending"  # retried on the normal schedule
    [attempt] = delivery.attempts.all()
    assert (attempt.status_code, attempt.succeeded) == (status, False)
    assert "redirect" in attempt.error


def test_410_disables_the_endpoint_and_tells_the_organization(api, receiver, second_receiver, clock):
    gone = register(api, receiver.url)
    watcher = register(api, second_receiver.url, events=["webhook_endpoint.disabled"])
    second_receiver.secrets.append(watcher["secret"])
    receiver.default = Answer(status=410, body=b"gone")
    first = emit(api.organization)
    deliver_due()
    gone_row = endpoint_row(gone)
    assert gone_row.status == "disabled"
    assert "410" in gone_row.disabled_reason
    assert gone_row.disabled_at == clock.now()
    delivery = delivery_for(first, gone)
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert delivery.attempt_count == 1
    # The organization hears about it through its other endpoint.
    [notice] = second_receiver.wait_for(1)
    assert notice.verified_with == [watcher["secret"]]
    assert notice.json["type"] == "webhook_endpoint.disabled"
    assert notice.json["data"]["id"] == gone["id"]
    assert notice.json["data"]["status"] == "disabled"
    assert "410" in notice.json["data"]["reason"]
    # Nothing more goes to it.
    emit(api.organization)
    clock.advance(timedelta(days=1))
    deliver_due()
    assert len(receiver.received) == 1
    assert api.get(f"/v1/webhook_endpoints/{gone['id']}").json()["status"] == "disabled"


def test_410_fails_the_endpoints_other_pending_deliveries(api, receiver, clock):
    body = register(api, receiver.url)
    receiver.script(Answer(status=500))
    waiting = emit(api.organization)
    deliver_due()
    assert delivery_for(waiting, body).status == "pending"
    receiver.default = Answer(status=410)
    emit(api.organization)
    deliver_due()  # only the new delivery is due; it gets the 410
    assert endpoint_row(body).status == "disabled"
    waiting_delivery = delivery_for(waiting, body)
    assert waiting_delivery.status == "failed" and waiting_delivery.last_error == "endpoint disabled"
    clock.advance(timedelta(minutes=1))
    assert deliver_due() == 0
    assert len(receiver.received) == 2


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_in_seconds_is_honoured(api, hook, receiver, clock, status):
    receiver.script(Answer(status=status, headers={"Retry-After": "120"}))
    event = emit(api.organization)
    deliver_due()
    delivery = delivery_for(event, hook)
    assert delivery.next_attempt_at == clock.now() + timedelta(seconds=120)
    clock.advance(timedelta(seconds=119))
    assert deliver_due() == 0
    clock.advance(timedelta(seconds=1))
    assert deliver_due() == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    assert [a.status_code for a in delivery.attempts.all()] == [status, 200]


def test_retry_after_as_an_http_date_is_honoured(api, hook, receiver, clock):
    from email.utils import format_datetime

    from cobrador.core.clock import wall_now

    later = format_datetime(wall_now() + timedelta(hours=1), usegmt=True)
    receiver.script(Answer(status=429, headers={"Retry-After": later}))
    event = emit(api.organization)
    deliver_due()
    wait = delivery_for(event, hook).next_attempt_at - clock.now()
    assert timedelta(minutes=58) < wait <= timedelta(hours=1)


def test_retry_after_is_capped_and_a_429_without_it_uses_the_schedule(api, hook, receiver, clock):
    receiver.script(Answer(status=429, headers={"Retry-After": str(10 * 86400)}), Answer(status=429))
    event = emit(api.organization)
    deliver_due()
    delivery = delivery_for(event, hook)
    assert delivery.next_attempt_at == clock.now() + timedelta(hours=24)
    clock.advance(timedelta(hours=24))
    deliver_due()
    delivery.refresh_from_db()
    assert RETRY_DELAYS[1] * 0.9 <= delivery.next_attempt_at - clock.now() <= RETRY_DELAYS[1] * 1.1


def test_retry_after_does_not_extend_the_schedule_forever(api, hook, receiver, clock):
    receiver.default = Answer(status=429, headers={"Retry-After": "1"})
    event = emit(api.organization)
    for _ in range(30):
        deliver_due()
        clock.advance(timedelta(seconds=2))
    delivery = delivery_for(event, hook)
    assert delivery.status == "failed"
    assert delivery.attempt_count == len(RETRY_DELAYS) + 1


def test_a_slow_receiver_times_out_and_is_retried(api, hook, receiver, clock, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    receiver.script(Answer(delay=3))
    event = emit(api.organization)
    started = time.monotonic()
    deliver_due()
    assert time.monotonic() - started < 2.5
    delivery = delivery_for(event, hook)
    [attempt] = delivery.attempts.all()
    assert attempt.status_code is None and not attempt.succeeded
    assert attempt.error == "timeout"
    assert 400 <= attempt.duration_ms < 2500
    assert delivery.status == "pending"
    clock.advance(timedelta(seconds=6))
    deliver_due()
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"
    first, second = receiver.wait_for(2)
    assert first.webhook_id == second.webhook_id == delivery.event.public_id


def test_the_default_timeout_is_15_seconds():
    from django.conf import settings

    assert settings.WEBHOOK_TIMEOUT_SECONDS == 15


def test_a_refused_connection_is_a_failed_attempt(api, clock):
    import socket

    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    body = register(api, f"http://127.0.0.1:{port}/hooks")
    event = emit(api.organization)
    deliver_due()
    [attempt] = delivery_for(event, body).attempts.all()
    assert attempt.error.startswith("connection error")
    assert delivery_for(event, body).status == "pending"


def test_only_the_first_kilobyte_of_a_huge_or_endless_body_is_read(api, hook, clock):
    """A receiver that announces 100 MB and then stalls cannot hold the sender or fill its memory."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    done = threading.Event()

    def answer_forever():
        conn, _ = server.accept()
        conn.recv(65536)
        conn.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100000000\r\n\r\n" + b"z" * 4096)
        done.wait(10)
        conn.close()

    thread = threading.Thread(target=answer_forever, daemon=True)
    thread.start()
    try:
        api.patch(f"/v1/webhook_endpoints/{hook['id']}", {"url": f"http://127.0.0.1:{port}/hooks"})
        event = emit(api.organization)
        started = time.monotonic()
        deliver_due()
        elapsed = time.monotonic() - started
    finally:
        done.set()
        thread.join()
        server.close()
    delivery = delivery_for(event, hook)
    [attempt] = delivery.attempts.all()
    assert attempt.status_code == 200 and attempt.succeeded, attempt.error
    assert attempt.response_body == "z" * 1024
    assert elapsed < 3, elapsed


def test_a_non_utf8_body_is_stored_readably(api, hook, receiver):
    receiver.script(Answer(status=500, body=b"\xff\xfe" + "é".encode("latin-1") * 2000))
    event = emit(api.organization)
    deliver_due()
    [attempt] = delivery_for(event, hook).attempts.all()
    assert attempt.status_code == 500
    assert 0 < len(attempt.response_body) <= 1024


def _fail_everything_for(api, clock, *, days: float, step=timedelta(hours=6)):
    """Walk the clock, emitting an event every step and delivering whatever is due."""
    end = clock.now() + timedelta(days=days)
    while clock.now() < end:
        emit(api.organization)
        deliver_due()
        clock.advance(step)


def test_an_endpoint_failing_for_5_days_is_disabled(api, receiver, second_receiver, clock):
    failing = register(api, receiver.url)
    watcher = register(api, second_receiver.url, events=["webhook_endpoint.disabled"])
    second_receiver.secrets.append(watcher["secret"])
    receiver.default = Answer(status=500)
    first_failure = clock.now()
    _fail_everything_for(api, clock, days=4.9)
    assert endpoint_row(failing).status == "enabled"
    assert endpoint_row(failing).failing_since == first_failure

    _fail_everything_for(api, clock, days=0.5)
    row = endpoint_row(failing)
    assert row.status == "disabled"
    assert row.disabled_reason == "failing for 5 days in a row"
    assert timedelta(days=5) <= row.disabled_at - first_failure <= timedelta(days=5, hours=6)
    assert not WebhookDelivery.objects.filter(endpoint=row, status="pending").exists()
    [notice] = second_receiver.wait_for(1)
    assert notice.json["type"] == "webhook_endpoint.disabled"
    assert notice.json["data"]["id"] == failing["id"]
    assert notice.verified_with == [watcher["secret"]]
    assert Event.objects.filter(type="webhook_endpoint.disabled").count() == 1
    requests_so_far = len(receiver.received)
    _fail_everything_for(api, clock, days=1)
    assert len(receiver.received) == requests_so_far


def test_a_success_resets_the_5_day_count(api, receiver, clock):
    failing = register(api, receiver.url)
    receiver.default = Answer(status=500)
    _fail_everything_for(api, clock, days=3)
    receiver.script(Answer(status=200))
    success_at = clock.now()
    emit(api.organization)
    deliver_due()  # one success among the batch's failures ends the streak; the failures start a new one
    assert endpoint_row(failing).failing_since == success_at
    second_streak = clock.now()
    _fail_everything_for(api, clock, days=4.5)
    row = endpoint_row(failing)
    assert row.status == "enabled"
    assert row.failing_since is not None and row.failing_since >= second_streak


def test_a_disabled_endpoint_gets_nothing_even_for_claimed_rows(api, hook, receiver):
    """A delivery claimed while its endpoint is disabled is not sent."""
    event = emit(api.organization)
    WebhookEndpoint.objects.filter(public_id=hook["id"]).update(status="disabled")
    deliver_due()
    time.sleep(0.1)
    assert receiver.received == []
    delivery = delivery_for(event, hook)
    assert delivery.status == "failed" and delivery.last_error == "endpoint disabled"


def test_the_sweep_delivers_and_records_a_job_run(api, hook, receiver):
    from cobrador.jobs.runner import run_job

    emit(api.organization)
    emit(api.organization)
    run = run_job("webhook-delivery")
    assert run.status == "succeeded"
    assert run.items_done == 2
    assert len(receiver.wait_for(2)) == 2
    assert run_job("webhook-delivery").items_done == 0


@pytest.mark.django_db(transaction=True)
def test_a_batch_survives_an_endpoint_deleted_mid_delivery(api, receiver, second_receiver):
    """Deleting an endpoint while its delivery is in flight must not lose the rest of the batch."""
    import threading

    slow = register(api, receiver.url)
    fast = register(api, second_receiver.url)
    receiver.default = Answer(delay=1.0)
    event = emit(api.organization)
    def send():
        try:
            deliver_due()
        finally:
            connection.close()  # this thread's own connection

    sender = threading.Thread(target=send)
    sender.start()
    receiver.wait_for(1)
    WebhookEndpoint.objects.filter(public_id=slow["id"]).delete()
    sender.join()
    assert delivery_for(event, fast).status == "succeeded"
    assert WebhookAttempt.objects.filter(delivery__endpoint__public_id=fast["id"]).count() == 1


def test_payload_bytes_are_compact_json_of_the_event(api):
    event = emit(api.organization, "payment.succeeded", {"amount": 100, "when": "2026-03-01"})
    payload = json.loads(delivery_module.payload_bytes(event))
    assert payload["id"] == event.public_id and payload["type"] == "payment.succeeded"
    assert payload["data"] == {"amount": 100, "when": "2026-03-01"}


@pytest.mark.parametrize("mode", ["head", "body"])
def test_a_receiver_trickling_its_answer_times_out_at_the_timeout_not_per_byte(receiver, settings, mode):
    """The timeout bounds the whole request: a byte every 0.1 s would otherwise keep a send going
    for hours, past the delivery's lease, and another worker would send the delivery again."""
    settings.WEBHOOK_TIMEOUT_SECONDS = 1.0
    receiver.script(Answer(body=b"x" * 100000, trickle=0.1, trickle_body_only=mode == "body"))
    started = time.monotonic()
    outcome = delivery_module.post_signed(receiver.url, b"{}", {"content-type": "application/json"})
    elapsed = time.monotonic() - started
    assert outcome.error == "timeout" and outcome.status_code is None
    assert 0.9 <= elapsed < 2.0
    # The next request on the same (pooled) client has its own deadline again.
    assert delivery_module.post_signed("http://127.0.0.1:1/refused", b"{}", {}).error.startswith("connection error")
