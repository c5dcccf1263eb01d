"""The /v1 API object: authentication, the error shape, the OpenAPI document and the docs page."""

import pytest
from django.db import transaction
from django.test import Client

from cobrador.organizations.services import create_api_key, revoke_api_key
from cobrador.webhooks.models import WebhookEndpoint

PROTECTED = [
    ("get", "/v1/webhook_endpoints"),
    ("post", "/v1/webhook_endpoints"),
    ("get", "/v1/events"),
    ("get", "/v1/organizations/settings/dunning"),
    ("patch", "/v1/organizations/settings/dunning"),
]


def _call(method, path, headers):
    client = Client()
    return getattr(client, method)(path, data="{}" if method != "get" else None, content_type="application/json",
                                   headers=headers)


def _assert_401(response):
    assert response.status_code == 401, response.content
    body = response.json()
    assert body["error"]["type"] == "unauthorized"
    assert set(body["error"]) == {"type", "message", "field", "errors"}


@pytest.mark.parametrize("method,path", PROTECTED)
def test_no_key_is_401(db, method, path):
    _assert_401(_call(method, path, {}))


@pytest.mark.parametrize("header", [
    "Bearer sk_live_" + "x" * 32,
    "Bearer sk_test_wrong",
    "Bearer ",
    "Bearer pk_live_something",
    "Basic dXNlcjpwYXNz",
    "sk_live_without_bearer",
])
@pytest.mark.parametrize("method,path", PROTECTED)
def test_a_wrong_key_is_401(api, method, path, header):
    _assert_401(_call(method, path, {"Authorization": header}))


@pytest.mark.parametrize("method,path", PROTECTED)
def test_a_revoked_key_is_401(api, method, path):
    assert _call(method, path, {"Authorization": f"Bearer {api.key}"}).status_code != 401
    key = api.organization.api_keys.get()
    revoke_api_key(organization=api.organization, key_id=key.public_id)
    _assert_401(_call(method, path, {"Authorization": f"Bearer {api.key}"}))


def test_other_keys_of_the_organization_keep_working_after_a_revocation(api):
    with transaction.atomic():
        _, second = create_api_key(organization=api.organization, name="second")
    revoke_api_key(organization=api.organization, key_id=api.organization.api_keys.get(name="").public_id)
    assert Client().get("/v1/events", headers={"Authorization": f"Bearer {second}"}).status_code == 200


def test_a_key_with_the_wrong_mode_prefix_is_401(api):
    """A live organization's key only works as sk_live_: relabelling it sk_test_ does not."""
    assert api.key.startswith("sk_live_")
    relabelled = "sk_test_" + api.key.removeprefix("sk_live_")
    _assert_401(_call("get", "/v1/events", {"Authorization": f"Bearer {relabelled}"}))


def test_a_rejected_write_changes_nothing(db, receiver):
    response = Client().post("/v1/webhook_endpoints", data={"url": receiver.url}, content_type="application/json")
    assert response.status_code == 401
    assert not WebhookEndpoint.objects.exists()


def test_the_openapi_document_loads(db):
    response = Client().get("/v1/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    for path in ("/v1/webhook_endpoints", "/v1/webhook_endpoints/{endpoint_id}",
                 "/v1/webhook_endpoints/{endpoint_id}/rotate_secret", "/v1/webhook_endpoints/{endpoint_id}/test",
                 "/v1/webhook_endpoints/{endpoint_id}/deliveries", "/v1/webhook_deliveries/{delivery_id}/replay",
                 "/v1/events", "/v1/events/{event_id}", "/v1/organizations/settings/dunning"):
        assert path in paths, path
    assert set(paths["/v1/webhook_endpoints/{endpoint_id}"]) >= {"get", "patch", "delete"}
    schemes = document["components"]["securitySchemes"]
    assert any(s.get("scheme") == "bearer" for s in schemes.values())
    update = document["components"]["schemas"]["WebhookEndpointUpdate"]
    assert set(update["properties"]) == {"url", "enabled_events", "description", "status"}
    assert update.get("additionalProperties") is False


def test_the_docs_page_answers(db):
    response = Client().get("/v1/docs")
    assert response.status_code == 200
    assert b"openapi.json" in response.content


def test_errors_share_one_shape(api):
    for response in (api.get("/v1/webhook_endpoints/we_nope"), api.post("/v1/webhook_endpoints", {"url": 1}),
                     api.post("/v1/webhook_endpoints", raw=b"[")):
        assert response.status_code in (400, 404, 422)
        assert set(response.json()["error"]) == {"type", "message", "field", "errors"}
