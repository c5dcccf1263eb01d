"""The fiscal settings and service invoice routes: every validation rule, write-only credentials,
cross-organization 404s, the billing account's fiscal fields, the admin."""

import pytest

from cobrador.nfe.models import FiscalSettings, ServiceInvoice
from cobrador.payments.charging import charge_invoice
from tests.factories import make_org
from tests.nfe.conftest import configure, make_account, note_of, sync
from tests.payments.billing import add_card, make_invoice

VALID = {"policy": "on_payment", "nfeio_company_id": "company0001", "nfeio_api_key": "nfeio-fake-key-0001",
         "city_service_code": "2690"}


def test_defaults_then_a_full_patch_with_write_only_credentials(api, clock):
    body = api.get("/v1/organizations/settings/fiscal").json()
    assert body["policy"] == "never" and body["has_nfeio_api_key"] is False
    assert body["environment"] == "Production"  # a live organization
    assert body["callback_path"].startswith("/v1/callbacks/nfeio/")
    response = api.patch("/v1/organizations/settings/fiscal", {
        **VALID, "nfeio_webhook_secret": "s" * 32, "federal_service_code": "1.05", "iss_rate": "0.02",
        "iss_withheld": True, "cancel_on_void": False, "description_template": "Plano {{ lines[0].description }}"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["has_nfeio_api_key"] and body["has_nfeio_webhook_secret"] and "nfeio_api_key" not in body
    assert (body["iss_rate"], body["iss_withheld"], body["cancel_on_void"]) == ("0.0200", True, False)
    assert b"nfeio-fake-key-0001" not in response.content
    config = FiscalSettings.objects.get(organization=api.organization)
    assert config.credentials["api_key"] == "nfeio-fake-key-0001"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT credentials FROM nfe_fiscalsettings")
        assert "nfeio-fake-key-0001" not in cursor.fetchone()[0]  # encrypted at rest


@pytest.mark.parametrize("patch, field", [
    ({"policy": "sometimes"}, "policy"),
    ({"policy": None}, "policy"),
    ({"policy": "on_payment"}, "nfeio_company_id"),  # required with a policy
    ({**VALID, "city_service_code": None}, "city_service_code"),
    ({**VALID, "nfeio_api_key": None}, "nfeio_api_key"),
    ({"nfeio_company_id": "has spaces"}, "nfeio_company_id"),
    ({"nfeio_api_key": "short"}, "nfeio_api_key"),
    ({"nfeio_webhook_secret": "too-short"}, "nfeio_webhook_secret"),
    ({"city_service_code": ""}, "city_service_code"),
    ({"federal_service_code": "abc"}, "federal_service_code"),
    ({"iss_rate": "0.06"}, "iss_rate"),
    ({"iss_rate": "-0.01"}, "iss_rate"),
    ({"iss_rate": "cinco"}, "iss_rate"),
    ({"iss_rate": True}, "iss_rate"),
    ({"iss_withheld": "yes"}, "iss_withheld"),
    ({"cancel_on_void": None}, "cancel_on_void"),
    ({"description_template": "{% for x in %}"}, "description_template"),
    ({"base_url": "http://169.254.169.254"}, "base_url"),  # never an API field
])
def test_every_invalid_patch_is_422_naming_the_field_and_changes_nothing(api, clock, patch, field):
    before = api.get("/v1/organizations/settings/fiscal").json()
    response = api.patch("/v1/organizations/settings/fiscal", patch)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get("/v1/organizations/settings/fiscal").json() == before


def test_credentials_kept_when_not_sent_and_cleared_with_null(api, clock):
    api.patch("/v1/organizations/settings/fiscal", VALID)
    assert api.patch("/v1/organizations/settings/fiscal", {"city_service_code": "0107"}).json()["has_nfeio_api_key"]
    response = api.patch("/v1/organizations/settings/fiscal", {"policy": "never", "nfeio_api_key": None})
    assert response.status_code == 200 and response.json()["has_nfeio_api_key"] is False


def test_billing_account_fiscal_fields_are_validated_and_shown(api, clock):
    response = api.post("/v1/billing_accounts", {
        "name": "ACME", "email": "a@acme.test", "document": "12.ABC.345/01DE-35", "legal_name": "ACME Ltda",
        "fiscal_email": "nf@acme.test",
        "address": {"street": "Av. Paulista", "number": "1000", "city": "São Paulo", "state": "SP",
                    "zipcode": "01310-100", "city_code": "3550308"}})
    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["legal_name"], body["fiscal_email"], body["address"]["city_code"]) == (
        "ACME Ltda", "nf@acme.test", "3550308")
    for bad, field in (({"fiscal_email": "nope"}, "fiscal_email"), ({"legal_name": "  "}, "legal_name"),
                       ({"legal_name": "x" * 116}, "legal_name"),
                       ({"address": {"street": "a", "city": "b", "state": "SP", "zipcode": "01310100",
                                     "city_code": "355"}}, "address.city_code")):
        response = api.patch(f"/v1/billing_accounts/{body['id']}", bad)
        assert response.status_code == 422, (bad, response.content)
        assert response.json()["error"]["field"] == field
    assert api.patch(f"/v1/billing_accounts/{body['id']}", {"legal_name": None}).json()["legal_name"] is None


def test_an_alphanumeric_cnpj_goes_to_nfeio_as_a_string(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org, document="12.ABC.345/01DE-35", legal_name="ACME Ltda")
    add_card(account)
    invoice = make_invoice(account)
    charge_invoice(organization=org, invoice=invoice)
    sync()
    borrower = nfeio.issue_requests()[0].json()["borrower"]
    assert (borrower["federalTaxNumber"], borrower["type"], borrower["name"]) == (
        "12ABC34501DE35", "LegalEntity", "ACME Ltda")


@pytest.fixture
def issued(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    charge_invoice(organization=org, invoice=invoice)
    sync()
    return note_of(invoice)


def test_list_get_and_filters(fiscal, issued):
    page = fiscal.get("/v1/service_invoices").json()
    assert [n["id"] for n in page["data"]] == [issued.public_id]
    assert fiscal.get("/v1/service_invoices", params={"status": "issued"}).json()["data"] == []
    assert len(fiscal.get("/v1/service_invoices", params={"invoice": issued.invoice.public_id}).json()["data"]) == 1
    assert fiscal.get("/v1/service_invoices", params={"status": "bogus"}).status_code == 422
    detail = fiscal.get(f"/v1/service_invoices/{issued.public_id}").json()
    assert detail["status"] == "processing" and detail["calls"][0]["operation"] == "issue"
    assert detail["calls"][0]["http_status"] == 202


def test_every_route_is_404_across_organizations(fiscal, issued, clock):
    other = make_org("Other", "test")
    for method, path in (("get", f"/v1/service_invoices/{issued.public_id}"),
                         ("post", f"/v1/service_invoices/{issued.public_id}/retry"),
                         ("post", f"/v1/service_invoices/{issued.public_id}/cancel")):
        response = getattr(other, method)(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["type"] == "service_invoice_not_found"
    assert other.get("/v1/service_invoices").json()["data"] == []
    assert other.get(f"/v1/invoices/{issued.invoice.public_id}").status_code == 404


def test_retry_and_cancel_refuse_what_they_cannot_do(fiscal, issued):
    response = fiscal.post(f"/v1/service_invoices/{issued.public_id}/retry")
    assert response.status_code == 409 and response.json()["error"]["type"] == "service_invoice_not_retryable"
    ServiceInvoice.objects.filter(pk=issued.pk).update(status="canceled")
    response = fiscal.post(f"/v1/service_invoices/{issued.public_id}/cancel")
    assert response.status_code == 409 and response.json()["error"]["type"] == "service_invoice_not_cancelable"


def test_canceling_a_note_in_flight_cancels_it_once_issued(fiscal, issued, nfeio):
    response = fiscal.post(f"/v1/service_invoices/{issued.public_id}/cancel")
    assert response.status_code == 200 and response.json()["cancel_requested"] is True
    from tests.nfe.test_issuing import later

    later()
    sync()  # the poll finds it issued: it goes on to cancellation at once
    issued.refresh_from_db()
    assert issued.status == "cancel_pending"
    sync()
    nfeio.advance()
    later()
    sync()
    issued.refresh_from_db()
    assert issued.status == "canceled"


def test_openapi_lists_the_routes_and_their_errors(api):
    schema = api.get("/v1/openapi.json").json()
    retry = schema["paths"]["/v1/service_invoices/{service_invoice_id}/retry"]["post"]
    assert {"200", "404", "409"} <= set(retry["responses"])
    assert "422" in schema["paths"]["/v1/organizations/settings/fiscal"]["patch"]["responses"]


def test_admin_shows_notes_with_calls_and_retries(admin_client, fiscal, issued, nfeio):
    response = admin_client.get(f"/admin/nfe/serviceinvoice/{issued.pk}/change/")
    assert response.status_code == 200 and b"issue" in response.content
    ServiceInvoice.objects.filter(pk=issued.pk).update(status="failed")
    response = admin_client.post("/admin/nfe/serviceinvoice/", {"action": "retry", "_selected_action": [issued.pk]})
    assert response.status_code == 302
    issued.refresh_from_db()
    assert issued.status == "pending" and issued.external_id.endswith(".1")
    assert admin_client.get("/admin/nfe/fiscalsettings/").status_code == 200


def test_the_job_is_in_the_catalogue():
    from cobrador.jobs.catalog import JOBS

    assert JOBS["nfe-sync"].cron == "*/30 * * * *"


def test_configure_helper_matches_the_api(fiscal, nfeio):
    config = configure(fiscal.organization, nfeio, policy="on_invoice_created")
    assert config.policy == "on_invoice_created"
