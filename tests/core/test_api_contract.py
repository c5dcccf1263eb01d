"""Bad query parameters and HTTP-level errors answer in the one JSON error shape, a foreign id is 404
whatever else is wrong with the request, and the OpenAPI document lists every error an operation gives."""

import pytest

from cobrador.core.errors import ApiError, Conflict
from cobrador.core.operations import registered_path_ids
from cobrador.customers.models import CreditGrant
from cobrador.urls import api as ninja_api
from tests.customers.conftest import create_account


def _error(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"type", "message", "field", "errors"}
    return error


@pytest.mark.parametrize("query,field", [
    ("starting_after=' OR 1=1--", "starting_after"),
    ("created_gte=9999-99-99", "created_gte"),
    ("period_start_gte=2.6e-287", "period_start_gte"),
    ("period_start_gte=9999-99-99", "period_start_gte"),
    ("period_start_gte=2026-01-01T00:00:00", "period_start_gte"),  # no timezone
    ("limit=10&limit=20", "limit"),
    ("status=open&status=paid", "status"),
    ("limit=0", "limit"),
    ("limit=101", "limit"),
])
def test_garbage_in_query_parameters_is_a_422_naming_the_parameter(api, query, field):
    error = _error(api.get(f"/v1/invoices?{query}"), 422)
    assert error["field"] == field and error["type"] == "validation_error"


def test_good_query_parameters_still_work(api):
    response = api.get("/v1/invoices?limit=5&period_start_gte=2026-01-01T00:00:00Z&status=open")
    assert response.status_code == 200 and response.json()["data"] == []


def test_a_method_the_path_does_not_take_is_a_json_405_with_allow(api):
    response = api.put("/v1/billing_accounts", {"name": "x"})
    error = _error(response, 405)
    assert error["type"] == "method_not_allowed"
    assert set(response["Allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_an_unknown_path_is_a_json_404(api):
    assert _error(api.get("/v1/no_such_things"), 404)["type"] == "not_found"


def test_an_over_long_path_is_a_json_414(api):
    error = _error(api.get("/v1/billing_accounts/" + "a" * 5000), 414)
    assert error["type"] == "uri_too_long"


def test_the_unsubscribe_page_stays_html(client, db):
    response = client.get("/v1/notifications/unsubscribe?token=nonsense")
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("method,template,body", [
    ("post", "/v1/billing_accounts/{ba}/credits", {}),
    ("post", "/v1/billing_accounts/{ba}/credits", {"amount": "lots"}),
    ("post", "/v1/billing_accounts/{ba}/credits", None),  # not JSON at all
    ("patch", "/v1/billing_accounts/{ba}", {"email": "not-an-email"}),
    ("post", "/v1/billing_accounts/{ba}/payment_methods", {"type": "cash"}),
    ("get", "/v1/billing_accounts/{ba}/credits?limit=0", None),
    ("get", "/v1/billing_accounts/{ba}/credits?bogus=1", None),
])
def test_a_foreign_id_with_bad_input_is_404(api, other_api, clock, method, template, body):
    theirs = create_account(other_api, email="someone@globex.test")
    path = template.format(ba=theirs["id"])
    if method == "get":
        response = api.get(path)
    elif body is None:
        response = api.request(method.upper(), path, raw=b"{not json")
    else:
        response = getattr(api, method)(path, body)
    assert _error(response, 404)["type"] == "not_found"
    # An unknown id is the same 404.
    response = api.post("/v1/billing_accounts/ba_nosuchaccount/credits", {})
    assert _error(response, 404)["type"] == "not_found"
    assert CreditGrant.objects.count() == 0


def test_the_own_id_with_bad_input_is_still_422(api, clock):
    mine = create_account(api)
    error = _error(api.post(f"/v1/billing_accounts/{mine['id']}/credits", {}), 422)
    assert error["field"] == "amount"


def _operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def _types(schema, response) -> set[str]:
    ref = response["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    body = schema["components"]["schemas"][ref]["properties"]["error"]
    body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]] if "$ref" in body else body
    return set(body["properties"]["type"]["enum"])


def test_every_operation_documents_its_errors_with_their_types(db):
    schema = ninja_api.get_openapi_schema()
    for path, method, operation in _operations(schema):
        responses = {int(status): response for status, response in operation["responses"].items()}
        assert 422 in responses, (method, path)
        for status, response in responses.items():
            if status >= 400:
                assert _types(schema, response), (method, path, status)
        if "{" in path:
            assert "not_found" in _types(schema, responses[404]), (method, path)
        if path != "/v1/callbacks/{provider}/{token}":
            assert _types(schema, responses[401]) == {"unauthorized"}, (method, path)
    pay = schema["paths"]["/v1/invoices/{invoice_id}/pay"]["post"]["responses"]
    assert {"payment_in_flight", "invoice_not_payable", "idempotency_key_in_progress"} <= _types(schema, pay[409])
    cancel = schema["paths"]["/v1/subscriptions/{subscription_id}/cancel"]["post"]["responses"]
    assert {"subscription_not_live", "subscription_committed"} <= _types(schema, cancel[409])


def test_no_business_conflict_is_a_bare_conflict():
    """Every 409 the code raises has its own type (clients branch on it, not on the message)."""
    def subclasses(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from subclasses(sub)
    conflicts = list(subclasses(Conflict))
    assert conflicts and all(c.type != "conflict" for c in conflicts)
    types = [c.type for c in subclasses(ApiError) if c.__module__.endswith(".errors") and c.status == 409]
    assert len(types) == len(set(types))


def test_every_path_id_has_a_lookup(db):
    """A new route's path id must say how it is looked up, or a foreign id with bad input would be a 422."""
    schema = ninja_api.get_openapi_schema()
    names = {parameter["name"] for _, _, operation in _operations(schema)
             for parameter in operation.get("parameters", []) if parameter["in"] == "path"}
    assert names - {"provider", "token"} <= registered_path_ids()


def test_list_limits_are_in_the_schema(db):
    schema = ninja_api.get_openapi_schema()
    for path, _method, operation in _operations(schema):
        for parameter in operation.get("parameters", []):
            if parameter["name"] == "limit":
                assert (parameter["schema"]["minimum"], parameter["schema"]["maximum"]) == (1, 100), path


def test_a_provider_callback_is_not_refused_for_its_query_string(client, db):
    """Inbound callbacks carry no API key and are stored raw: their URL's query is not ours to police."""
    response = client.post("/v1/callbacks/sandbox/no-such-token?attempt=2", data=b"{}",
                           content_type="application/json")
    assert _error(response, 404)["type"] == "not_found"
