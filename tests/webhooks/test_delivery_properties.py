"""Whatever a receiver answers, in any order, a delivery's record matches what the receiver saw."""

from datetime import UTC, datetime

from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cobrador.core import clock as clock_module
from cobrador.webhooks.delivery import RETRY_DELAYS, deliver_due
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import emit, register

ANSWERS = {
    "200": Answer(status=200),
    "204": Answer(status=204, body=b""),
    "500": Answer(status=500),
    "502": Answer(status=502),
    "302": Answer(status=302, headers={"Location": "http://127.0.0.1:9/elsewhere"}),
    "400": Answer(status=400),
    "410": Answer(status=410),
    "429": Answer(status=429, headers={"Retry-After": "30"}),
    "503": Answer(status=503, headers={"Retry-After": "7"}),
}
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


@hypothesis_settings(max_examples=30, deadline=None,
                     suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(script=st.lists(st.sampled_from(sorted(ANSWERS)), min_size=1, max_size=12))
def test_a_delivery_records_exactly_what_happened(api, receiver, script):
    clock_module.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    try:
        receiver.received.clear()
        receiver.answers.clear()
        receiver.script(*(ANSWERS[name] for name in script))
        receiver.default = Answer(status=500)
        body = register(api, receiver.url)
        receiver.secrets[:] = [body["secret"]]
        event = emit(api.organization)
        delivery = WebhookDelivery.objects.get(event=event, endpoint__public_id=body["id"])
        for _ in range(MAX_ATTEMPTS + 2):
            deliver_due()
            delivery.refresh_from_db()
            if delivery.status != "pending":
                break
            clock_module.set(delivery.next_attempt_at)
        assert delivery.status != "pending"

        answers = script + ["500"] * MAX_ATTEMPTS
        finals = [i for i, name in enumerate(answers) if name in ("200", "204", "410")]
        first_final = finals[0] if finals else len(answers)
        expected_attempts = min(first_final + 1, MAX_ATTEMPTS)
        received = receiver.wait_for(expected_attempts)
        assert len(received) == expected_attempts == delivery.attempt_count
        assert {r.webhook_id for r in received} == {event.public_id}
        assert all(r.verified_with == [body["secret"]] for r in received)
        attempts = list(delivery.attempts.all())
        assert [a.number for a in attempts] == list(range(1, expected_attempts + 1))
        assert [a.status_code for a in attempts] == [int(name) for name in answers[:expected_attempts]]
        last = answers[expected_attempts - 1]
        assert delivery.status == ("succeeded" if last in ("200", "204") else "failed")
        assert all(a.succeeded is (a.status_code in (200, 204)) for a in attempts)
        endpoint = WebhookEndpoint.objects.get(public_id=body["id"])
        assert endpoint.status == ("disabled" if last == "410" else "enabled")
        assert (endpoint.failing_since is None) is (last in ("200", "204"))
    finally:
        WebhookEndpoint.objects.filter(organization=api.organization).delete()
        clock_module.set(None)
