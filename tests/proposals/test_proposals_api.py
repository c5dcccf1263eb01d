from datetime import UTC, datetime

import pytest

from cobrador.core import clock as clock_module
from cobrador.customers.models import BillingAccount
from cobrador.events.models import Event
from cobrador.proposals.models import Proposal
from cobrador.subscriptions.models import Subscription
from tests.concurrency import at_once
from tests.conftest import make_org
from tests.subscriptions.conftest import make_account, make_coupon, make_plan

pytestmark = pytest.mark.django_db


def _body(plan, **extra):
    return {"prospect": {"name": "Joana Lima", "email": "joana@example.com", "document": "529.982.247-25"},
            "lines": [{"plan": plan.public_id, "quantity": 2}], "expires_on": "2026-03-10", **extra}


def test_a_proposal_is_created_as_a_numbered_draft_with_its_totals(api, clock):
    plan = make_plan(api.organization, amount=10000)
    coupon = make_coupon(api.organization, code="TEN", percent_off=10)
    body = _body(plan)
    body["lines"].append({"plan": plan.public_id, "coupon": "TEN", "commitment_months": 12, "trial_days": 7})

    first = api.post("/v1/proposals", body)
    second = api.post("/v1/proposals", _body(plan))

    assert first.status_code == 201, first.content
    data = first.json()
    assert data["id"].startswith("prop_") and data["number"] == 1 and second.json()["number"] == 2
    assert data["status"] == "draft" and data["account"] is None
    assert data["prospect"] == {"name": "Joana Lima", "email": "joana@example.com", "document": "52998224725",
                                "locale": "pt-BR"}
    assert [line["amount"] for line in data["lines"]] == [20000, 10000]
    assert data["lines"][1]["coupon"] == coupon.public_id and data["lines"][1]["discount"] == 1000
    assert (data["subtotal"], data["discount"], data["total"]) == (30000, 1000, 29000)
    # The last valid day ends at local midnight in America/Sao_Paulo (UTC-3).
    assert data["expires_on"] == "2026-03-10" and data["expires_at"] == "2026-03-11T00:00:00-03:00"


@pytest.mark.parametrize(("change", "field"), [
    ({"lines": []}, "lines"),
    ({"lines": [{"plan": "plan_nope"}]}, "lines.0.plan"),
    ({"expires_on": "2026-02-28"}, "expires_on"),
    ({"expires_on": "tomorrow"}, "expires_on"),
    ({"prospect": {"name": "X", "email": "not-an-email"}}, "prospect.email"),
    ({"prospect": {"name": "X", "email": "x@example.com", "document": "111.111.111-11"}}, "prospect.document"),
    ({"account": "ba_x"}, "account"),
])
def test_bad_input_is_a_422_naming_the_field_and_writes_nothing(api, clock, change, field):
    plan = make_plan(api.organization)
    body = _body(plan)
    if "account" in change:
        body.pop("prospect")
    body.update(change)

    response = api.post("/v1/proposals", body)

    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not Proposal.objects.exists()


def test_only_a_draft_is_editable(api, clock):
    plan, other = make_plan(api.organization), make_plan(api.organization, amount=500, name="Lite")
    proposal = api.post("/v1/proposals", _body(plan)).json()

    edited = api.patch(f"/v1/proposals/{proposal['id']}", {"lines": [{"plan": other.public_id, "quantity": 3}],
                                                           "message": "Oferta especial"})
    api.post(f"/v1/proposals/{proposal['id']}/send")
    refused = api.patch(f"/v1/proposals/{proposal['id']}", {"message": "late"})

    assert edited.status_code == 200
    assert edited.json()["total"] == 1500 and edited.json()["message"] == "Oferta especial"
    assert refused.status_code == 409 and refused.json()["error"]["type"] == "proposal_not_editable"


def test_send_then_accept_creates_the_account_and_the_subscriptions_with_their_events(api, clock):
    plan = make_plan(api.organization)
    proposal = api.post("/v1/proposals", _body(plan, lines=[{"plan": plan.public_id, "quantity": 2},
                                                             {"plan": plan.public_id, "trial_days": 14}])).json()

    sent = api.post(f"/v1/proposals/{proposal['id']}/send")
    accepted = api.post(f"/v1/proposals/{proposal['id']}/accept")
    again = api.post(f"/v1/proposals/{proposal['id']}/accept")

    assert sent.status_code == 200 and sent.json()["status"] == "sent" and sent.json()["sent_at"]
    assert accepted.status_code == 200, accepted.content
    data = accepted.json()
    assert data["status"] == "accepted" and data["accepted_at"] and data["account"].startswith("ba_")
    account = BillingAccount.objects.get(public_id=data["account"])
    assert (account.name, account.email, account.document) == ("Joana Lima", "joana@example.com", "52998224725")
    subscriptions = Subscription.objects.filter(account=account).order_by("pk")
    assert [s.public_id for s in subscriptions] == data["subscriptions"]
    assert [(s.quantity, s.status) for s in subscriptions] == [(2, "active"), (1, "trialing")]
    assert again.status_code == 200 and again.json() == data
    assert Subscription.objects.count() == 2 and BillingAccount.objects.count() == 1
    types = list(Event.objects.order_by("pk").values_list("type", flat=True))
    assert types == ["proposal.sent", "billing_account.created", "subscription.created", "subscription.created",
                     "proposal.accepted"]
    event = Event.objects.get(type="proposal.accepted")
    assert event.data["id"] == proposal["id"] and event.data["subscriptions"] == data["subscriptions"]


def test_an_existing_account_gets_the_subscription(api, clock):
    account = make_account(api.organization)
    plan = make_plan(api.organization)
    body = _body(plan, account=account.public_id)
    body.pop("prospect")
    proposal = api.post("/v1/proposals", body).json()
    api.post(f"/v1/proposals/{proposal['id']}/send")

    data = api.post(f"/v1/proposals/{proposal['id']}/accept").json()

    assert data["account"] == account.public_id and BillingAccount.objects.count() == 1
    assert Subscription.objects.get().account == account


def test_accepting_past_the_last_valid_day_is_a_409_proposal_expired(api, clock):
    plan = make_plan(api.organization)
    proposal = api.post("/v1/proposals", _body(plan)).json()
    api.post(f"/v1/proposals/{proposal['id']}/send")
    clock.set(datetime(2026, 3, 11, 2, 59, tzinfo=UTC))  # 23:59 on the 10th in Sao Paulo: still valid
    assert api.post(f"/v1/proposals/{proposal['id']}/decline", {"reason": "price"}).status_code == 200

    other = api.post("/v1/proposals", _body(plan, expires_on="2026-03-11")).json()
    api.post(f"/v1/proposals/{other['id']}/send")
    clock.set(datetime(2026, 3, 12, 3, 0, tzinfo=UTC))  # 00:00 on the 12th there
    response = api.post(f"/v1/proposals/{other['id']}/accept")

    assert response.status_code == 409 and response.json()["error"]["type"] == "proposal_expired"
    assert not Subscription.objects.exists() and not BillingAccount.objects.exists()


@pytest.mark.parametrize(("first", "then", "status", "type_"), [
    ("decline", "accept", 409, "proposal_closed"),
    ("cancel", "accept", 409, "proposal_closed"),
    ("accept", "decline", 409, "proposal_closed"),
    ("accept", "cancel", 409, "proposal_closed"),
    (None, "accept", 409, "proposal_not_open"),
])
def test_closed_proposals_refuse_further_transitions(api, clock, first, then, status, type_):
    plan = make_plan(api.organization)
    proposal = api.post("/v1/proposals", _body(plan)).json()
    if first:
        api.post(f"/v1/proposals/{proposal['id']}/send")
        assert api.post(f"/v1/proposals/{proposal['id']}/{first}").status_code == 200

    response = api.post(f"/v1/proposals/{proposal['id']}/{then}")

    assert response.status_code == status and response.json()["error"]["type"] == type_


def test_canceling_a_draft_sends_no_event_and_canceling_a_sent_one_does(api, clock):
    plan = make_plan(api.organization)
    draft = api.post("/v1/proposals", _body(plan)).json()
    sent = api.post("/v1/proposals", _body(plan)).json()
    api.post(f"/v1/proposals/{sent['id']}/send")

    assert api.post(f"/v1/proposals/{draft['id']}/cancel").json()["status"] == "canceled"
    assert api.post(f"/v1/proposals/{sent['id']}/cancel").json()["canceled_at"]
    assert list(Event.objects.filter(type="proposal.canceled").values_list("data__id", flat=True)) == [sent["id"]]


def test_list_filters_and_cross_organization_404s(api, other_api, clock):
    plan = make_plan(api.organization)
    a = api.post("/v1/proposals", _body(plan)).json()
    b = api.post("/v1/proposals", _body(plan)).json()
    api.post(f"/v1/proposals/{b['id']}/send")

    assert [p["id"] for p in api.get("/v1/proposals").json()["data"]] == [b["id"], a["id"]]
    assert [p["id"] for p in api.get("/v1/proposals", params={"status": "sent"}).json()["data"]] == [b["id"]]
    assert api.get("/v1/proposals", params={"sent_at_gte": "2026-03-01T00:00:00Z"}).json()["data"][0]["id"] == b["id"]
    assert api.get("/v1/proposals", params={"sent_at_gte": "2026-03-01T00:00:00"}).status_code == 422
    assert other_api.get("/v1/proposals").json()["data"] == []
    for method, path in [("get", ""), ("post", "/send"), ("post", "/accept"), ("post", "/cancel"),
                         ("patch", "")]:
        response = (other_api.patch(f"/v1/proposals/{a['id']}", {"message": "x"}) if method == "patch"
                    else getattr(other_api, method)(f"/v1/proposals/{a['id']}{path}"))
        assert response.status_code == 404 and response.json()["error"]["type"] == "not_found"


def test_openapi_lists_each_routes_errors(api):
    spec = api.get("/v1/openapi.json").json()
    accept = spec["paths"]["/v1/proposals/{proposal_id}/accept"]["post"]["responses"]
    assert {"200", "404", "409", "422"} <= set(accept)


def test_reminder_days_are_configurable_per_organization(api, clock):
    assert api.get("/v1/organizations/settings/proposals").json()["reminder_days"] == [3, 1]
    changed = api.patch("/v1/organizations/settings/proposals", {"reminder_days": [1, 7]})
    assert changed.json()["reminder_days"] == [7, 1]
    assert api.patch("/v1/organizations/settings/proposals", {"reminder_days": [0]}).status_code == 422


@pytest.mark.django_db(transaction=True)
def test_two_clicks_at_once_create_one_account_and_one_subscription_set():
    clock_module.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    try:
        api = make_org("Acme", "live")
        plan = make_plan(api.organization)
        proposal = api.post("/v1/proposals", _body(plan, lines=[{"plan": plan.public_id},
                                                                 {"plan": plan.public_id, "quantity": 3}])).json()
        api.post(f"/v1/proposals/{proposal['id']}/send")
        answers = at_once(*[lambda: api.post(f"/v1/proposals/{proposal['id']}/accept")] * 2)

        assert [r.status_code for r in answers] == [200, 200]
        assert answers[0].json() == answers[1].json()
        assert BillingAccount.objects.count() == 1 and Subscription.objects.count() == 2
        assert Event.objects.filter(type="proposal.accepted").count() == 1
        assert Event.objects.filter(type="subscription.created").count() == 2
    finally:
        clock_module.set(None)


