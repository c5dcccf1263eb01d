"""Operations console pages for subscriptions and invoices, and the OpenAPI document of the new routes."""


from cobrador.invoicing.models import Invoice, InvoiceNumberSequence
from tests.subscriptions.conftest import invoice, make_account, make_plan, subscribe, utc


def test_changelists_and_change_pages_load(admin_client, api, clock):
    org = api.organization
    sub = subscribe(org, make_account(org), make_plan(org))
    invoice(utc(2026, 3, 1, 13))
    inv = Invoice.objects.get()
    for path in ["subscriptions/subscription", "invoicing/invoice", "invoicing/invoicenumbersequence"]:
        assert admin_client.get(f"/admin/{path}/").status_code == 200
    assert admin_client.get("/admin/subscriptions/subscription/", {"q": sub.public_id}).status_code == 200
    page = admin_client.get(f"/admin/subscriptions/subscription/{sub.pk}/change/").content.decode()
    assert sub.public_id in page
    page = admin_client.get(f"/admin/invoicing/invoice/{inv.pk}/change/").content.decode()
    assert inv.public_id in page and "Pro × 1" in page
    assert admin_client.get("/admin/invoicing/invoice/add/").status_code == 403  # invoices come from the sweep
    sequence = InvoiceNumberSequence.objects.get()
    assert admin_client.get(f"/admin/invoicing/invoicenumbersequence/{sequence.pk}/change/").status_code == 200


def test_openapi_documents_the_routes_and_their_semantics(api):
    spec = api.get("/v1/openapi.json").json()
    paths = spec["paths"]
    for path in ["/v1/subscriptions", "/v1/subscriptions/{subscription_id}",
                 "/v1/subscriptions/{subscription_id}/cancel", "/v1/subscriptions/{subscription_id}/confirm_renewal",
                 "/v1/subscriptions/{subscription_id}/resume", "/v1/invoices", "/v1/invoices/{invoice_id}",
                 "/v1/invoices/{invoice_id}/void"]:
        assert path in paths, path
    schemas = spec["components"]["schemas"]
    assert "last day of shorter months" in schemas["SubscriptionCreate"]["description"]
    assert "gapless" in schemas["InvoiceOut"]["description"]
    assert "commitment_end" in paths["/v1/subscriptions/{subscription_id}/cancel"]["post"]["description"]
