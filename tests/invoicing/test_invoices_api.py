"""The /v1/invoices API: list with filters, retrieve, void; tenancy."""

from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice
from tests.subscriptions.conftest import events_of, invoice, make_account, make_plan, renew, subscribe, utc


def make_invoices(org, account, plan):
    """Two subscriptions with two invoices each (March and April)."""
    first = subscribe(org, account, plan)
    second = subscribe(org, make_account(org, name="João"), plan, quantity=2)
    invoice(utc(2026, 3, 1, 13))
    renew(utc(2026, 4, 1, 12))
    invoice(utc(2026, 4, 1, 13))
    return first, second


def test_retrieve_matches_the_invoice_created_event(api, org, account, plan, clock):
    sub = subscribe(org, account, plan, quantity=2)
    invoice(utc(2026, 3, 1, 13))
    inv = Invoice.objects.get(subscription=sub)
    response = api.get(f"/v1/invoices/{inv.public_id}")
    assert response.status_code == 200
    body = response.json()
    assert body == events_of("invoice.created")[0].data  # the event carries the object as the API returns it
    assert body["object"] == "invoice" and body["number"] == 1 and body["status"] == "open"
    assert body["account"] == account.public_id and body["subscription"] == sub.public_id
    assert body["lines"] == [{"description": "Pro × 2", "plan": plan.public_id, "quantity": 2, "unit_amount": 10000,
                              "amount": 20000, "period_start": "2026-03-01T12:00:00Z",
                              "period_end": "2026-04-01T12:00:00Z", "service_code": None}]
    assert body["due_date"] == "2026-03-01"


def test_list_filters(api, org, account, plan, clock):
    first, second = make_invoices(org, account, plan)
    all_ids = [i["id"] for i in api.get("/v1/invoices").json()["data"]]
    assert all_ids == list(Invoice.objects.order_by("-pk").values_list("public_id", flat=True)) and len(all_ids) == 4

    def ids(**params):
        response = api.get("/v1/invoices", params=params)
        assert response.status_code == 200, response.content
        return sorted(i["id"] for i in response.json()["data"])

    def expected(**filters):
        return sorted(Invoice.objects.filter(**filters).values_list("public_id", flat=True))

    assert ids(subscription=first.public_id) == expected(subscription=first)
    assert ids(account=second.account.public_id) == expected(account=second.account)
    assert ids(period_start_gte="2026-04-01T00:00:00Z") == expected(period_start__gte=utc(2026, 4, 1))
    assert ids(period_start_lt="2026-04-01T00:00:00Z") == expected(period_start__lt=utc(2026, 4, 1))
    assert len(ids(status="open")) == 4 and ids(status="void") == []
    page = api.get("/v1/invoices", params={"limit": 3}).json()
    assert page["has_more"] and len(page["data"]) == 3
    assert len(api.get("/v1/invoices", params={"limit": 3, "cursor": page["next_cursor"]}).json()["data"]) == 1


def test_bad_filters_are_422s(api, org, account, plan, clock):
    for params, field in [({"status": "lost"}, "status"), ({"period_start_gte": "yesterday"}, "period_start_gte"),
                          ({"period_start_lt": "2026-04-01T00:00:00"}, "period_start_lt"), ({"limit": 0}, "limit")]:
        response = api.get("/v1/invoices", params=params)
        assert response.status_code == 422, params
        assert response.json()["error"]["field"] == field


def test_void_an_open_invoice_once(api, org, account, plan, clock):
    subscribe(org, account, plan)
    invoice(utc(2026, 3, 1, 13))
    inv = Invoice.objects.get()
    response = api.post(f"/v1/invoices/{inv.public_id}/void")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "void" and body["voided_at"] == "2026-03-01T13:00:00Z" and body["number"] == 1
    [event] = events_of("invoice.voided")
    assert event.data == body
    before = Event.objects.count()
    again = api.post(f"/v1/invoices/{inv.public_id}/void")
    assert again.status_code == 409 and again.json()["error"]["field"] == "status"
    assert again.json()["error"]["type"] == "invoice_not_voidable"
    assert Event.objects.count() == before
    # The voided period is not invoiced again.
    invoice(utc(2026, 3, 2, 1))
    assert Invoice.objects.count() == 1


def test_a_paid_invoice_cannot_be_voided(api, org, account, clock):
    free = make_plan(org, amount=0)
    subscribe(org, account, free)
    invoice(utc(2026, 3, 1, 13))
    inv = Invoice.objects.get()
    assert inv.status == "paid"
    assert api.post(f"/v1/invoices/{inv.public_id}/void").status_code == 409
    Invoice.objects.filter(pk=inv.pk).update(status="open")
    assert api.post(f"/v1/invoices/{inv.public_id}/void").status_code == 200


def test_another_organizations_invoices_are_404s(api, other_api, clock):
    theirs = subscribe(other_api.organization, make_account(other_api.organization), make_plan(other_api.organization))
    invoice(utc(2026, 3, 1, 13))
    inv = Invoice.objects.get(subscription=theirs)
    assert api.get(f"/v1/invoices/{inv.public_id}").status_code == 404
    assert api.post(f"/v1/invoices/{inv.public_id}/void").status_code == 404
    assert api.get("/v1/invoices").json()["data"] == []
    assert api.get("/v1/invoices", params={"subscription": theirs.public_id}).json()["data"] == []
    assert Invoice.objects.get(pk=inv.pk).status == "open"
    assert other_api.get(f"/v1/invoices/{inv.public_id}").status_code == 200
