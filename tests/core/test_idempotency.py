"""`Idempotency-Key` on API writes: same key and body replays; same key, other body is a 422."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.core.models import IdempotencyRecord
from cobrador.events.models import Event
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint

ENDPOINTS = "/v1/webhook_endpoints"


def _key(value):
    return {"Idempotency-Key": value}


def test_the_same_key_and_body_replays_the_stored_response(api, receiver):
    body = {"url": receiver.url, "enabled_events": ["invoice.paid"]}
    first = api.post(ENDPOINTS, body, headers=_key("create-1"))
    assert first.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    again = api.post(ENDPOINTS, body, headers=_key("create-1"))
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    assert WebhookEndpoint.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422_naming_the_header(api, receiver, second_receiver):
    api.post(ENDPOINTS, {"url": receiver.url}, headers=_key("create-1"))
    response = api.post(ENDPOINTS, {"url": second_receiver.url}, headers=_key("create-1"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "Idempotency-Key"
    assert "Idempotency-Key" in error["message"]
    assert WebhookEndpoint.objects.count() == 1


def test_the_same_key_on_another_path_is_a_422(api, hook):
    api.post(f"{ENDPOINTS}/{hook['id']}/test", headers=_key("k"))
    response = api.post(f"{ENDPOINTS}/{hook['id']}/rotate_secret", headers=_key("k"))
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "Idempotency-Key"


def test_without_a_key_every_request_executes(api, receiver):
    api.post(ENDPOINTS, {"url": receiver.url})
    api.post(ENDPOINTS, {"url": receiver.url})
    assert WebhookEndpoint.objects.count() == 2
    assert not IdempotencyRecord.objects.exists()


def test_keys_are_per_organization(api, other_api, receiver):
    body = {"url": receiver.url}
    mine = api.post(ENDPOINTS, body, headers=_key("shared-key"))
    theirs = other_api.post(ENDPOINTS, body, headers=_key("shared-key"))
    assert mine.status_code == theirs.status_code == 201
    assert "Idempotent-Replayed" not in theirs.headers
    assert mine.json()["id"] != theirs.json()["id"]
    assert WebhookEndpoint.objects.filter(organization=api.organization).count() == 1
    assert WebhookEndpoint.objects.filter(organization=other_api.organization).count() == 1
    # And the other organization's body under the same key is not a mismatch for us.
    other = other_api.post(ENDPOINTS, {"url": receiver.url + "?x"}, headers=_key("mine-only"))
    assert other.status_code == 201
    assert api.post(ENDPOINTS, body, headers=_key("mine-only")).status_code == 201


def test_a_ping_with_a_key_is_sent_once(api, hook):
    first = api.post(f"{ENDPOINTS}/{hook['id']}/test", headers=_key("ping-1"))
    second = api.post(f"{ENDPOINTS}/{hook['id']}/test", headers=_key("ping-1"))
    assert first.status_code == second.status_code == 202
    assert second.json()["id"] == first.json()["id"]
    assert Event.objects.filter(type="ping").count() == 1
    assert WebhookDelivery.objects.count() == 1


def test_a_replayed_delete_answers_the_same(api, hook):
    first = api.delete(f"{ENDPOINTS}/{hook['id']}", headers=_key("del"))
    second = api.delete(f"{ENDPOINTS}/{hook['id']}", headers=_key("del"))
    assert first.status_code == second.status_code == 204
    assert second.headers["Idempotent-Replayed"] == "true"
    assert api.delete(f"{ENDPOINTS}/{hook['id']}", headers=_key("del-2")).status_code == 404


def test_a_validation_error_is_replayed_too(api):
    first = api.post(ENDPOINTS, {"url": "ftp://x"}, headers=_key("bad"))
    assert first.status_code == 422
    again = api.post(ENDPOINTS, {"url": "ftp://x"}, headers=_key("bad"))
    assert again.status_code == 422 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()


def test_a_key_is_replayed_for_24_hours_then_forgotten(api, receiver, clock):
    body = {"url": receiver.url}
    first = api.post(ENDPOINTS, body, headers=_key("day"))
    clock.advance(timedelta(hours=23, minutes=59))
    assert api.post(ENDPOINTS, body, headers=_key("day")).json()["id"] == first.json()["id"]
    clock.advance(timedelta(minutes=2))
    later = api.post(ENDPOINTS, body, headers=_key("day"))
    assert later.status_code == 201 and "Idempotent-Replayed" not in later.headers
    assert later.json()["id"] != first.json()["id"]


def _claimed_and_unanswered(api, key: str, receiver, clock) -> bytes:
    """The key's row as a request creating an endpoint leaves it while it runs (or after its process
    died): claimed now, no response yet. Returns that request's body."""
    from django.test import RequestFactory

    from cobrador.organizations.idempotency import _fingerprint

    body = b'{"url": "%s"}' % receiver.url.encode()
    request = RequestFactory().post(ENDPOINTS, data=body, content_type="application/json")
    with transaction.atomic():
        IdempotencyRecord.objects.create(organization=api.organization, key=key,
                                         request_fingerprint=_fingerprint(request), created_at=clock.now())
    return body


def test_a_request_still_in_progress_is_409(api, receiver, clock):
    """The key's row is claimed before the handler runs; a second request meanwhile must wait."""
    body = _claimed_and_unanswered(api, "busy", receiver, clock)
    response = api.post(ENDPOINTS, raw=body, headers=_key("busy"))
    assert response.status_code == 409
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not WebhookEndpoint.objects.exists()


def test_a_claim_left_by_a_dead_process_is_taken_over_after_10_minutes(api, receiver, clock):
    """A process that died mid-request never answered its claim: after ABANDONED_AFTER the key's next
    request executes (once), instead of a 409 for the key's whole 24 hours."""
    body = _claimed_and_unanswered(api, "orphan", receiver, clock)
    clock.advance(timedelta(minutes=9))
    assert api.post(ENDPOINTS, raw=body, headers=_key("orphan")).status_code == 409
    clock.advance(timedelta(minutes=2))
    taken_over = api.post(ENDPOINTS, raw=body, headers=_key("orphan"))
    assert taken_over.status_code == 201 and "Idempotent-Replayed" not in taken_over.headers
    replayed = api.post(ENDPOINTS, raw=body, headers=_key("orphan"))
    assert replayed.headers["Idempotent-Replayed"] == "true"
    assert replayed.json()["id"] == taken_over.json()["id"]
    assert WebhookEndpoint.objects.count() == 1
    # Another body under the key is still a 422, abandoned or not.
    assert api.post(ENDPOINTS, {"url": receiver.url + "?other"}, headers=_key("orphan")).status_code == 422


def test_reads_ignore_the_key(api):
    assert api.get(ENDPOINTS, headers=_key("read")).status_code == 200
    assert not IdempotencyRecord.objects.exists()


def test_a_key_longer_than_255_characters_is_400(api, receiver):
    response = api.post(ENDPOINTS, {"url": receiver.url}, headers=_key("k" * 256))
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "Idempotency-Key"
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.parametrize("auth", [None, "Bearer sk_live_nope"])
def test_an_unauthenticated_write_with_a_key_is_401_and_stores_nothing(db, receiver, auth):
    from django.test import Client

    headers = {"Idempotency-Key": "k"}
    if auth:
        headers["Authorization"] = auth
    response = Client().post(ENDPOINTS, data={"url": receiver.url}, content_type="application/json",
                             headers=headers)
    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()
