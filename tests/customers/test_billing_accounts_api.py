from datetime import timedelta

import pytest

from cobrador.customers.models import BillingAccount
from cobrador.events.models import Event
from tests.customers.conftest import ACCOUNT, create_account


def test_create_returns_the_account_normalized_and_emits_created(api, clock):
    body = create_account(api)
    assert body["id"].startswith("ba_")
    assert body["object"] == "billing_account"
    assert body["document"] == "52998224725"
    assert body["document_type"] == "cpf"
    assert body["address"] == {"street": "Av. Paulista", "number": "1000", "complement": "cj 12",
                               "neighborhood": "Bela Vista", "city": "São Paulo", "state": "SP",
                               "zipcode": "01310100", "country": "BR"}
    assert body["status"] == "active"
    assert body["default_payment_method_id"] is None
    assert body["metadata"] == {"crm_id": "42"}
    assert body["created_at"] == "2026-03-01T12:00:00Z"
    event = Event.objects.get(organization=api.organization, type="billing_account.created")
    assert event.data == body
    assert api.get(f"/v1/billing_accounts/{body['id']}").json() == body


def test_alphanumeric_cnpj_is_accepted_and_stored_unmasked(api, clock):
    body = create_account(api, document="12.abc.345/01de-35", name="ACME Ltda")
    assert (body["document"], body["document_type"]) == ("12ABC34501DE35", "cnpj")
    assert BillingAccount.objects.get(public_id=body["id"]).document == "12ABC34501DE35"


def test_minimal_account(api, clock):
    response = api.post("/v1/billing_accounts", {"name": "Bob", "email": "bob@example.com"})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["document"] is None and body["document_type"] is None and body["address"] is None
    assert body["locale"] == "pt-BR" and body["metadata"] == {}


def test_a_foreign_address_is_not_held_to_brazilian_rules(api, clock):
    address = {"street": "1 Main St", "city": "Springfield", "state": "Illinois", "zipcode": "62701-1234",
               "country": "US"}
    body = create_account(api, address=address, document=None, locale="en")
    assert body["address"]["state"] == "Illinois"
    assert body["address"]["zipcode"] == "62701-1234"


@pytest.mark.parametrize("overrides,field", [
    ({"document": "529.982.247-24"}, "document"),
    ({"document": "111.111.111-11"}, "document"),
    ({"document": "12.ABC.345/01DE-36"}, "document"),
    ({"document": "1234"}, "document"),
    ({"document": 52998224725}, "document"),
    ({"email": "not-an-email"}, "email"),
    ({"email": ""}, "email"),
    ({"name": ""}, "name"),
    ({"name": "   "}, "name"),
    ({"name": None}, "name"),
    ({"locale": "fr"}, "locale"),
    ({"status": "suspended"}, "status"),
    ({"metadata": {"n": 1}}, "metadata.n"),
    ({"metadata": "x"}, "metadata"),
    ({"address": {**ACCOUNT["address"], "state": "XX"}}, "address.state"),
    ({"address": {**ACCOUNT["address"], "zipcode": "0131010"}}, "address.zipcode"),
    ({"address": {**ACCOUNT["address"], "zipcode": "ABCDEFGH"}}, "address.zipcode"),
    ({"address": {**ACCOUNT["address"], "country": "Brasil"}}, "address.country"),
    ({"address": {"street": "Rua A", "state": "SP", "zipcode": "01310100"}}, "address.city"),
    ({"address": {**ACCOUNT["address"], "floor": "3"}}, "address.floor"),
    ({"nickname": "M"}, "nickname"),
])
def test_bad_input_is_422_naming_the_field_and_creates_nothing(api, clock, overrides, field):
    response = api.post("/v1/billing_accounts", {**ACCOUNT, **overrides})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["field"] == field
    assert not BillingAccount.objects.exists()
    assert not Event.objects.exists()


def test_missing_required_fields_are_named(api, clock):
    response = api.post("/v1/billing_accounts", {"name": "X"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "email"


def test_patch_changes_only_what_is_sent_and_emits_updated(api, account, clock):
    clock.advance(timedelta(hours=1))
    response = api.patch(f"/v1/billing_accounts/{account['id']}",
                         {"name": "Maria S. Souza", "document": "12ABC34501DE35", "locale": "en"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["name"] == "Maria S. Souza"
    assert (body["document"], body["document_type"]) == ("12ABC34501DE35", "cnpj")
    assert body["locale"] == "en"
    assert body["email"] == account["email"] and body["address"] == account["address"]
    assert body["updated_at"] == "2026-03-01T13:00:00Z"
    event = Event.objects.get(type="billing_account.updated")
    assert set(event.data.pop("changed_fields")) == {"name", "document", "document_type", "locale"}
    assert event.data == body


def test_patch_can_remove_document_and_address(api, account, clock):
    body = api.patch(f"/v1/billing_accounts/{account['id']}", {"document": None, "address": None}).json()
    assert body["document"] is None and body["document_type"] is None and body["address"] is None


def test_patch_that_changes_nothing_emits_nothing(api, account, clock):
    response = api.patch(f"/v1/billing_accounts/{account['id']}", {"name": account["name"]})
    assert response.status_code == 200
    assert response.json()["updated_at"] == account["updated_at"]
    assert not Event.objects.filter(type="billing_account.updated").exists()


@pytest.mark.parametrize("body,field", [
    ({"document": "529.982.247-24"}, "document"),
    ({"email": "nope"}, "email"),
    ({"name": None}, "name"),
    ({"locale": None}, "locale"),
    ({"metadata": None}, "metadata"),
    ({"status": "suspended"}, "status"),
    ({"address": {"street": "R", "city": "C", "state": "ZZ", "zipcode": "01310100"}}, "address.state"),
])
def test_bad_patch_is_422_naming_the_field_and_changes_nothing(api, account, clock, body, field):
    response = api.patch(f"/v1/billing_accounts/{account['id']}", {"name": "Changed", **body})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get(f"/v1/billing_accounts/{account['id']}").json() == account
    assert not Event.objects.filter(type="billing_account.updated").exists()


def test_list_filters_by_email_and_status_and_paginates(api, clock):
    first = create_account(api, email="a@example.com")
    second = create_account(api, email="B@example.com")
    third = create_account(api, email="a@example.com")
    BillingAccount.objects.filter(public_id=third["id"]).update(status="suspended")

    def ids(params):
        response = api.get("/v1/billing_accounts", params=params)
        assert response.status_code == 200, response.content
        return [a["id"] for a in response.json()["data"]]

    assert ids({}) == [third["id"], second["id"], first["id"]]
    assert ids({"email": "A@example.com"}) == [third["id"], first["id"]]
    assert ids({"email": "b@example.com"}) == [second["id"]]
    assert ids({"status": "active"}) == [second["id"], first["id"]]
    assert ids({"status": "suspended", "email": "a@example.com"}) == [third["id"]]

    page = api.get("/v1/billing_accounts", params={"limit": 2}).json()
    assert [a["id"] for a in page["data"]] == [third["id"], second["id"]] and page["has_more"]
    rest = api.get("/v1/billing_accounts", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [a["id"] for a in rest["data"]] == [first["id"]] and not rest["has_more"]


def test_list_rejects_an_unknown_status(api, clock):
    response = api.get("/v1/billing_accounts", params={"status": "deleted"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "status"
