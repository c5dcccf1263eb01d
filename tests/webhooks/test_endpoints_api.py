"""The webhook endpoint API: create, list, update, delete, rotate, ping, deliveries, replay."""

from datetime import timedelta

import pytest
from django.db import connection

from cobrador.events.models import Event
from cobrador.webhooks.delivery import deliver_due
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import delivery_for, emit, endpoint_row, register

ENDPOINTS = "/v1/webhook_endpoints"


def test_create_answers_the_endpoint_with_its_secret(api, receiver):
    response = api.post(ENDPOINTS, {"url": receiver.url, "enabled_events": ["invoice.paid", "payment.failed",
                                                                            "invoice.paid"],
                                    "description": "billing sync"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["id"].startswith("we_")
    assert body["object"] == "webhook_endpoint"
    assert body["url"] == receiver.url
    assert body["enabled_events"] == ["invoice.paid", "payment.failed"]
    assert body["description"] == "billing sync"
    assert body["status"] == "enabled"
    assert body["secret"].startswith("whsec_")
    assert endpoint_row(body).organization == api.organization


def test_enabled_events_default_to_all(api, receiver):
    response = api.post(ENDPOINTS, {"url": receiver.url})
    assert response.status_code == 201
    assert response.json()["enabled_events"] == ["*"]


def test_the_secret_is_shown_only_by_create_and_rotate(api, receiver):
    body = register(api, receiver.url)
    assert api.get(f"{ENDPOINTS}/{body['id']}").json()["secret"] is None
    assert all(e["secret"] is None for e in api.get(ENDPOINTS).json()["data"])
    assert api.patch(f"{ENDPOINTS}/{body['id']}", {"description": "x"}).json()["secret"] is None


def test_secrets_are_encrypted_at_rest(api, receiver):
    body = register(api, receiver.url)
    rotated = api.post(f"{ENDPOINTS}/{body['id']}/rotate_secret").json()
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret, previous_secret FROM webhooks_webhookendpoint WHERE public_id = %s",
                       [body["id"]])
        raw_secret, raw_previous = cursor.fetchone()
    for raw, plain in ((raw_secret, rotated["secret"]), (raw_previous, body["secret"])):
        assert raw and "whsec_" not in raw
        assert plain.removeprefix("whsec_") not in raw
    row = endpoint_row(body)
    assert (row.secret, row.previous_secret) == (rotated["secret"], body["secret"])


@pytest.mark.parametrize("payload,field", [
    ({}, "url"),
    ({"url": 5}, "url"),
    ({"url": "ftp://example.com/hooks"}, "url"),
    ({"url": "not a url"}, "url"),
    ({"url": "http://" + "a" * 2050 + ".com/"}, "url"),
    ({"url": "RECEIVER", "enabled_events": []}, "enabled_events"),
    ({"url": "RECEIVER", "enabled_events": ["invoice.exploded"]}, "enabled_events"),
    ({"url": "RECEIVER", "enabled_events": "*"}, "enabled_events"),
    ({"url": "RECEIVER", "enabled_events": [1]}, "enabled_events.0"),
    ({"url": "RECEIVER", "description": "x" * 501}, "description"),
    ({"url": "RECEIVER", "secret": "whsec_mine"}, "secret"),
    ({"url": "RECEIVER", "status": "disabled"}, "status"),
])
def test_bad_input_at_create_is_422_naming_the_field_and_creates_nothing(api, receiver, payload, field):
    payload = {k: (receiver.url if v == "RECEIVER" else v) for k, v in payload.items()}
    response = api.post(ENDPOINTS, payload)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not WebhookEndpoint.objects.exists()


def test_malformed_json_is_400(api):
    response = api.post(ENDPOINTS, raw=b"{not json")
    assert response.status_code == 400
    assert not WebhookEndpoint.objects.exists()


def test_list_is_newest_first_and_cursor_paginated(api, other_api, receiver):
    ids = [register(api, receiver.url, description=str(i))["id"] for i in range(5)]
    register(other_api, receiver.url)
    first = api.get(ENDPOINTS, params={"limit": 2}).json()
    assert [e["id"] for e in first["data"]] == ids[::-1][:2]
    assert first["has_more"] is True
    rest = api.get(ENDPOINTS, params={"limit": 10, "cursor": first["next_cursor"]}).json()
    assert [e["id"] for e in rest["data"]] == ids[::-1][2:]
    assert rest["has_more"] is False and rest["next_cursor"] is None
    assert api.get(ENDPOINTS, params={"limit": 0}).status_code == 422
    assert api.get(ENDPOINTS, params={"cursor": "%%%"}).json()["error"]["field"] == "cursor"


def test_update_changes_only_the_fields_sent(api, receiver, second_receiver):
    body = register(api, receiver.url, events=["invoice.paid"], description="before")
    response = api.patch(f"{ENDPOINTS}/{body['id']}", {"url": second_receiver.url,
                                                        "enabled_events": ["payment.failed", "invoice.paid"]})
    assert response.status_code == 200, response.content
    after = response.json()
    assert after["url"] == second_receiver.url
    assert after["enabled_events"] == ["invoice.paid", "payment.failed"]
    assert after["description"] == "before"
    assert endpoint_row(body).secret == body["secret"]


@pytest.mark.parametrize("payload,field", [
    ({"url": "gopher://example.com/"}, "url"),
    ({"url": None}, "url"),
    ({"description": None}, "description"),
    ({"status": None}, "status"),
    ({"enabled_events": None}, "enabled_events"),
    ({"enabled_events": ["nope.nope"]}, "enabled_events"),
    ({"status": "paused"}, "status"),
    ({"secret": "whsec_x"}, "secret"),
])
def test_bad_input_at_update_is_422_and_changes_nothing(api, receiver, payload, field):
    body = register(api, receiver.url, events=["invoice.paid"], description="keep")
    before = api.get(f"{ENDPOINTS}/{body['id']}").json()
    response = api.patch(f"{ENDPOINTS}/{body['id']}", payload)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get(f"{ENDPOINTS}/{body['id']}").json() == before


def test_disable_and_enable_through_the_api(api, hook, receiver):
    response = api.patch(f"{ENDPOINTS}/{hook['id']}", {"status": "disabled"})
    assert response.json()["status"] == "disabled"
    assert response.json()["disabled_reason"] == "disabled through the API"
    emit(api.organization)
    assert not WebhookDelivery.objects.exists()
    response = api.patch(f"{ENDPOINTS}/{hook['id']}", {"status": "enabled"})
    assert response.json()["status"] == "enabled"
    assert response.json()["disabled_reason"] is None
    event = emit(api.organization)
    deliver_due()
    assert [r.webhook_id for r in receiver.wait_for(1)] == [event.public_id]


def test_delete_removes_the_endpoint_and_its_deliveries(api, hook):
    emit(api.organization)
    deliver_due()
    assert WebhookAttempt.objects.exists()
    response = api.delete(f"{ENDPOINTS}/{hook['id']}")
    assert response.status_code == 204
    assert api.get(f"{ENDPOINTS}/{hook['id']}").status_code == 404
    assert not WebhookDelivery.objects.exists() and not WebhookAttempt.objects.exists()
    assert Event.objects.count() == 1  # the event itself stays (other endpoints, /v1/events)


def test_rotate_secret_answers_a_new_secret_and_keeps_the_old_for_24_hours(api, hook, clock):
    response = api.post(f"{ENDPOINTS}/{hook['id']}/rotate_secret")
    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != hook["secret"]
    row = endpoint_row(hook)
    assert row.secret == new and row.previous_secret == hook["secret"]
    assert row.previous_secret_expires_at == clock.now() + timedelta(hours=24)


def test_ping_goes_only_to_its_endpoint(api, receiver, second_receiver):
    pinged = register(api, receiver.url)
    register(api, second_receiver.url)
    receiver.secrets.append(pinged["secret"])
    response = api.post(f"{ENDPOINTS}/{pinged['id']}/test")
    assert response.status_code == 202, response.content
    delivery = response.json()
    assert delivery["event_type"] == "ping" and delivery["endpoint_id"] == pinged["id"]
    assert delivery["status"] == "pending" and delivery["attempts"] == []
    assert deliver_due() == 1
    [request] = receiver.wait_for(1)
    assert request.verified_with == [pinged["secret"]]
    assert request.json["type"] == "ping"
    assert request.json["data"]["webhook_endpoint"] == pinged["id"]
    assert request.webhook_id == delivery["event_id"]
    assert second_receiver.received == []


def test_ping_to_a_disabled_endpoint_is_409(api, hook):
    api.patch(f"{ENDPOINTS}/{hook['id']}", {"status": "disabled"})
    response = api.post(f"{ENDPOINTS}/{hook['id']}/test")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "webhook_endpoint_disabled"
    assert not WebhookDelivery.objects.exists()


def test_deliveries_list_every_attempt_with_the_first_kilobyte_of_the_body(api, hook, receiver, clock):
    long_body = ("x" * 1000 + "y" * 1000).encode()
    receiver.script(Answer(status=500, body=long_body), Answer(status=200, body=b'{"thanks":1}'))
    event = emit(api.organization)
    deliver_due()
    clock.advance(timedelta(seconds=6))
    deliver_due()
    response = api.get(f"{ENDPOINTS}/{hook['id']}/deliveries")
    assert response.status_code == 200
    [delivery] = response.json()["data"]
    assert delivery["event_id"] == event.public_id and delivery["event_type"] == "invoice.paid"
    assert delivery["status"] == "succeeded" and delivery["attempt_count"] == 2
    assert delivery["last_status_code"] == 200 and delivery["finished_at"] is not None
    first, second = delivery["attempts"]
    assert (first["number"], first["status_code"], first["succeeded"]) == (1, 500, False)
    assert first["response_body"] == long_body[:1024].decode()
    assert first["duration_ms"] >= 0
    assert (second["number"], second["status_code"], second["succeeded"]) == (2, 200, True)
    assert second["response_body"] == '{"thanks":1}'
    assert api.get(f"{ENDPOINTS}/{hook['id']}/deliveries", params={"status": "failed"}).json()["data"] == []


def test_replay_sends_the_same_webhook_id_again(api, hook, receiver):
    event = emit(api.organization)
    deliver_due()
    delivery = delivery_for(event, hook)
    assert delivery.status == "succeeded"
    response = api.post(f"/v1/webhook_deliveries/{delivery.public_id}/replay")
    assert response.status_code == 202, response.content
    assert response.json()["status"] == "pending"
    assert deliver_due() == 1
    first, second = receiver.wait_for(2)
    assert first.webhook_id == second.webhook_id == event.public_id
    assert first.body == second.body
    assert second.verified_with == [hook["secret"]]
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempt_count) == ("succeeded", 2)


def test_replay_to_a_disabled_endpoint_is_409(api, hook):
    event = emit(api.organization)
    deliver_due()
    api.patch(f"{ENDPOINTS}/{hook['id']}", {"status": "disabled"})
    response = api.post(f"/v1/webhook_deliveries/{delivery_for(event, hook).public_id}/replay")
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "webhook_endpoint_disabled"


def test_another_organizations_endpoint_is_404_everywhere(api, other_api, receiver):
    theirs = register(other_api, receiver.url, description="theirs")
    event = emit(other_api.organization)
    delivery = delivery_for(event, theirs)
    before = other_api.get(f"{ENDPOINTS}/{theirs['id']}").json()
    base = f"{ENDPOINTS}/{theirs['id']}"
    for response in (
        api.get(base),
        api.patch(base, {"description": "mine now"}),
        api.delete(base),
        api.post(f"{base}/rotate_secret"),
        api.post(f"{base}/test"),
        api.get(f"{base}/deliveries"),
        api.post(f"/v1/webhook_deliveries/{delivery.public_id}/replay"),
        api.get(f"/v1/events/{event.public_id}"),
    ):
        assert response.status_code == 404, response.content
        assert response.json()["error"]["type"] == "not_found"
    assert other_api.get(base).json() == before
    assert endpoint_row(theirs).secret == theirs["secret"]
    assert WebhookDelivery.objects.filter(endpoint__public_id=theirs["id"]).count() == 1
    assert api.get(ENDPOINTS).json()["data"] == []
    assert api.get("/v1/events").json()["data"] == []


def test_events_are_listed_for_their_organization(api, other_api):
    mine = emit(api.organization, "invoice.paid")
    emit(other_api.organization, "invoice.paid")
    body = api.get("/v1/events").json()
    assert [e["id"] for e in body["data"]] == [mine.public_id]
    assert api.get(f"/v1/events/{mine.public_id}").json()["data"] == mine.data
    assert api.get("/v1/events", params={"type": "payment.failed"}).json()["data"] == []
