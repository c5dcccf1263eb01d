"""The /v1/subscriptions API: create, change, cancel, confirm a renewal, resume; tenancy; bad input."""

import pytest

from cobrador.catalog.models import Coupon
from cobrador.events.models import Event
from cobrador.subscriptions.models import Subscription
from tests.subscriptions.conftest import (
    add_card,
    events_of,
    make_account,
    make_coupon,
    make_plan,
    refresh,
    renew,
    subscribe,
    utc,
)

NOW = utc(2026, 3, 1, 12)  # the clock fixture's time


@pytest.fixture
def org(api):
    return api.organization


@pytest.fixture
def account(org, clock):
    return make_account(org)


@pytest.fixture
def plan(org, clock):
    return make_plan(org, amount=4990)


def create(api, body, status=201):
    response = api.post("/v1/subscriptions", body)
    assert response.status_code == status, response.content
    return response.json()


def test_create_without_trial_starts_the_first_paid_period_now(api, account, plan):
    body = create(api, {"account": account.public_id, "plan": plan.public_id, "quantity": 3})
    assert body["status"] == "active"
    assert body["id"].startswith("sub_")
    assert body["quantity"] == 3
    assert body["current_period_start"] == "2026-03-01T12:00:00Z"
    assert body["current_period_end"] == "2026-04-01T12:00:00Z"
    assert body["billing_anchor_day"] == 1
    assert body["payment_method"] == account.payment_methods.get().public_id  # the account's default
    assert body["commitment_end"] is None and body["trial_end"] is None
    [event] = events_of("subscription.created")
    assert event.data["id"] == body["id"]
    assert api.get(f"/v1/subscriptions/{body['id']}").json() == body


def test_create_with_the_plans_trial_an_override_or_a_trial_end(api, org, account, clock):
    trial_plan = make_plan(org, trial_days=14)
    body = create(api, {"account": account.public_id, "plan": trial_plan.public_id})
    assert body["status"] == "trialing"
    assert body["trial_end"] == body["current_period_end"] == "2026-03-15T12:00:00Z"
    assert body["billing_anchor_day"] == 15  # the first paid period starts when the trial ends

    body = create(api, {"account": account.public_id, "plan": trial_plan.public_id, "trial_days": 0})
    assert body["status"] == "active" and body["trial_end"] is None

    body = create(api, {"account": account.public_id, "plan": trial_plan.public_id,
                        "trial_end": "2026-03-31T08:00:00-03:00"})
    assert body["trial_end"] == "2026-03-31T11:00:00Z" and body["billing_anchor_day"] == 31


def test_create_with_commitment_prompt_mode_coupon_and_explicit_payment_method(api, org, account, plan):
    coupon = make_coupon(org, code="HALF", percent_off=50, duration="repeating", duration_in_periods=3)
    second_card = add_card(account, default=False)
    body = create(api, {"account": account.public_id, "plan": plan.public_id, "commitment_months": 12,
                        "renewal_mode": "prompt", "coupon": "HALF", "payment_method": second_card.public_id,
                        "metadata": {"crm": "7"}})
    assert body["commitment_end"] == "2027-03-01T12:00:00Z"
    assert body["renewal_mode"] == "prompt"
    assert body["coupon"] == coupon.public_id
    assert body["payment_method"] == second_card.public_id
    assert body["metadata"] == {"crm": "7"}
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 1


def _nothing_changed(before_events: int, before_subscriptions: int):
    assert Event.objects.count() == before_events
    assert Subscription.objects.count() == before_subscriptions


@pytest.mark.parametrize("overrides, field", [
    ({"quantity": -1}, "quantity"),
    ({"quantity": 0}, "quantity"),
    ({"quantity": "2"}, "quantity"),
    ({"plan": "plan_doesnotexist"}, "plan"),
    ({"account": "ba_doesnotexist"}, "account"),
    ({"payment_method": "pm_doesnotexist"}, "payment_method"),
    ({"coupon": "NOPE"}, "coupon"),
    ({"trial_days": -1}, "trial_days"),
    ({"trial_end": "2026-02-01T00:00:00Z"}, "trial_end"),
    ({"trial_end": "2026-04-01T00:00:00"}, "trial_end"),
    ({"commitment_months": 5, "plan": "QUARTERLY"}, "commitment_months"),
    ({"renewal_mode": "prompt"}, "renewal_mode"),
    ({"renewal_mode": "sometimes"}, "renewal_mode"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_create_input_is_a_422_naming_the_field_and_changes_nothing(api, org, account, plan, overrides, field):
    quarterly = make_plan(org, interval_count=3)
    coupon = make_coupon(org, code="LIMITED", percent_off=10)
    body = {"account": account.public_id, "plan": plan.public_id, "coupon": "LIMITED", **overrides}
    if body["plan"] == "QUARTERLY":
        body["plan"] = quarterly.public_id
    before = Event.objects.count(), Subscription.objects.count()
    response = api.post("/v1/subscriptions", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    _nothing_changed(*before)
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 0  # the redemption rolled back too


def test_archived_plan_and_exhausted_coupon_are_422s(api, org, account, plan):
    archived = make_plan(org, name="Old")
    archived.active = False
    archived.save()
    assert api.post("/v1/subscriptions", {"account": account.public_id, "plan": archived.public_id}
                    ).json()["error"]["field"] == "plan"
    coupon = make_coupon(org, code="ONE", percent_off=10)
    coupon.max_redemptions = 1
    coupon.save()
    create(api, {"account": account.public_id, "plan": plan.public_id, "coupon": "ONE"})
    response = api.post("/v1/subscriptions", {"account": account.public_id, "plan": plan.public_id, "coupon": "ONE"})
    assert response.status_code == 422 and response.json()["error"]["field"] == "coupon"
    assert Subscription.objects.count() == 1


def test_another_organizations_ids_are_404s_on_every_route(api, other_api, clock):
    theirs = subscribe(other_api.organization, make_account(other_api.organization),
                       make_plan(other_api.organization))
    base = f"/v1/subscriptions/{theirs.public_id}"
    assert api.get(base).status_code == 404
    assert api.patch(base, {"quantity": 2}).status_code == 404
    assert api.post(f"{base}/cancel", {}).status_code == 404
    assert api.post(f"{base}/confirm_renewal").status_code == 404
    assert api.post(f"{base}/resume", {}).status_code == 404
    assert api.get("/v1/subscriptions").json()["data"] == []
    assert api.get("/v1/subscriptions", params={"account": theirs.account.public_id}).json()["data"] == []
    # Their account or plan in a body is as unknown as a made-up id: a 422 naming the field.
    mine = make_plan(api.organization)
    response = api.post("/v1/subscriptions", {"account": theirs.account.public_id, "plan": mine.public_id})
    assert response.status_code == 422 and response.json()["error"]["field"] == "account"
    assert refresh(theirs).quantity == 1 and refresh(theirs).status == "active"


def test_list_filters_and_pagination(api, org, account, plan, clock):
    other_plan = make_plan(org, name="Basic")
    ids = [create(api, {"account": account.public_id, "plan": plan.public_id})["id"] for _ in range(3)]
    basic = create(api, {"account": account.public_id, "plan": other_plan.public_id})["id"]
    page = api.get("/v1/subscriptions", params={"limit": 2}).json()
    assert [s["id"] for s in page["data"]] == [basic, ids[2]] and page["has_more"]
    rest = api.get("/v1/subscriptions", params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [s["id"] for s in rest["data"]] == [ids[1], ids[0]] and not rest["has_more"]
    assert [s["id"] for s in api.get("/v1/subscriptions", params={"plan": other_plan.public_id}).json()["data"]] \
        == [basic]
    assert api.get("/v1/subscriptions", params={"status": "canceled"}).json()["data"] == []
    assert api.get("/v1/subscriptions", params={"status": "bogus"}).status_code == 422


def test_plan_and_quantity_changes_wait_for_the_next_period(api, org, account, plan, clock):
    bigger = make_plan(org, name="Max", amount=9990)
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    response = api.patch(f"/v1/subscriptions/{sub['id']}", {"quantity": 5, "plan": bigger.public_id})
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["plan"], body["quantity"]) == (plan.public_id, 1)
    assert (body["pending_plan"], body["pending_quantity"]) == (bigger.public_id, 5)
    assert len(events_of("subscription.updated")) == 1

    renew(utc(2026, 4, 1, 12))
    body = api.get(f"/v1/subscriptions/{sub['id']}").json()
    assert (body["plan"], body["quantity"]) == (bigger.public_id, 5)
    assert body["pending_plan"] is None and body["pending_quantity"] is None
    assert body["current_period_start"] == "2026-04-01T12:00:00Z"


@pytest.mark.parametrize("patch, field", [
    ({"quantity": -3}, "quantity"),
    ({"quantity": None}, "quantity"),
    ({"plan": "plan_unknown"}, "plan"),
    ({"plan": "USD"}, "plan"),
    ({"payment_method": "pm_unknown"}, "payment_method"),
    ({"renewal_mode": "prompt"}, "renewal_mode"),
    ({"status": "canceled"}, "status"),
])
def test_bad_update_input_is_a_422_and_changes_nothing(api, org, account, plan, patch, field):
    usd = make_plan(org, currency="USD")
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    if patch.get("plan") == "USD":
        patch = {"plan": usd.public_id}
    before = Event.objects.count()
    response = api.patch(f"/v1/subscriptions/{sub['id']}", patch)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get(f"/v1/subscriptions/{sub['id']}").json() == sub
    assert Event.objects.count() == before


def test_cancel_at_period_end_by_default(api, account, plan):
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    response = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"reason": "too expensive"})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["status"] == "active"
    assert body["cancel_at_period_end"] is True
    assert body["cancel_at"] == sub["current_period_end"]
    assert body["cancellation_reason"] == "too expensive"
    assert body["canceled_at"] == "2026-03-01T12:00:00Z" and body["ended_at"] is None


def test_cancel_with_an_empty_body_and_immediately(api, account, plan):
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    assert api.post(f"/v1/subscriptions/{sub['id']}/cancel").json()["cancel_at_period_end"] is True
    body = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"immediately": True}).json()
    assert body["status"] == "canceled" and body["ended_at"] == "2026-03-01T12:00:00Z"
    assert len(events_of("subscription.canceled")) == 1
    again = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"immediately": True})
    assert again.status_code == 409
    assert again.json()["error"]["type"] == "subscription_not_live"


def test_cancel_at_a_future_time_and_bad_cancel_input(api, account, plan):
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    url = f"/v1/subscriptions/{sub['id']}/cancel"
    before = Event.objects.count()
    for body, field in [({"cancel_at": "2026-02-01T00:00:00Z"}, "cancel_at"),
                        ({"cancel_at": "2026-03-01T12:00:00Z"}, "cancel_at"),
                        ({"cancel_at": "next week"}, "cancel_at"),
                        ({"immediately": True, "cancel_at": "2026-05-01T00:00:00Z"}, "cancel_at"),
                        ({"immediately": "yes"}, "immediately"),
                        ({"reason": "x" * 501}, "reason")]:
        response = api.post(url, body)
        assert response.status_code == 422, (body, response.content)
        assert response.json()["error"]["field"] == field
    assert api.get(f"/v1/subscriptions/{sub['id']}").json() == sub
    assert Event.objects.count() == before
    body = api.post(url, {"cancel_at": "2026-03-20T00:00:00Z"}).json()
    assert body["cancel_at"] == "2026-03-20T00:00:00Z" and body["cancel_at_period_end"] is False


def test_under_a_commitment_cancellation_is_scheduled_at_commitment_end(api, account, plan, clock):
    sub = create(api, {"account": account.public_id, "plan": plan.public_id, "commitment_months": 12})
    url = f"/v1/subscriptions/{sub['id']}/cancel"
    response = api.post(url, {"immediately": True})
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "subscription_committed"
    assert "2027-03-01T12:00:00+00:00" in response.json()["error"]["message"]
    response = api.post(url, {"cancel_at": "2026-09-01T00:00:00Z"})
    assert response.status_code == 409 and "2027-03-01" in response.json()["error"]["message"]
    assert api.get(f"/v1/subscriptions/{sub['id']}").json() == sub

    body = api.post(url, {}).json()
    assert body["cancel_at"] == "2027-03-01T12:00:00Z" and body["status"] == "active"
    assert body["cancel_at_period_end"] is False  # the current period ends on April 1st

    # The subscription keeps renewing (and being invoiced) until commitment_end, then ends.
    renew(utc(2026, 4, 1, 12))
    assert refresh(Subscription.objects.get(public_id=sub["id"])).status == "active"
    renew(utc(2027, 3, 1, 12))
    ended = Subscription.objects.get(public_id=sub["id"])
    assert ended.status == "canceled" and ended.ended_at == utc(2027, 3, 1, 12)


def test_a_trial_under_commitment_can_still_be_canceled_at_once(api, org, account):
    trial_plan = make_plan(org, trial_days=7)
    sub = create(api, {"account": account.public_id, "plan": trial_plan.public_id, "commitment_months": 12})
    body = api.post(f"/v1/subscriptions/{sub['id']}/cancel", {"immediately": True}).json()
    assert body["status"] == "canceled"


def test_confirm_renewal(api, account, plan):
    auto = create(api, {"account": account.public_id, "plan": plan.public_id})
    assert api.post(f"/v1/subscriptions/{auto['id']}/confirm_renewal").status_code == 409
    prompt = create(api, {"account": account.public_id, "plan": plan.public_id, "commitment_months": 12,
                          "renewal_mode": "prompt"})
    body = api.post(f"/v1/subscriptions/{prompt['id']}/confirm_renewal").json()
    assert body["renewal_confirmed_at"] == "2026-03-01T12:00:00Z"
    assert api.post(f"/v1/subscriptions/{prompt['id']}/confirm_renewal").json() == body  # harmless twice
    assert len(events_of("subscription.updated")) == 1


def test_resume_withdraws_a_scheduled_cancellation(api, account, plan):
    sub = create(api, {"account": account.public_id, "plan": plan.public_id})
    assert api.post(f"/v1/subscriptions/{sub['id']}/resume").status_code == 409  # nothing to resume
    api.post(f"/v1/subscriptions/{sub['id']}/cancel", {})
    body = api.post(f"/v1/subscriptions/{sub['id']}/resume").json()
    assert body["cancel_at"] is None and body["cancel_at_period_end"] is False and body["canceled_at"] is None
    assert len(events_of("subscription.resumed")) == 1


def test_resume_a_paused_subscription_needs_a_payment_method(api, org, clock):
    account = make_account(org, card=False)
    trial_plan = make_plan(org, trial_days=10)
    sub = create(api, {"account": account.public_id, "plan": trial_plan.public_id})
    renew(utc(2026, 3, 11, 12))
    assert api.get(f"/v1/subscriptions/{sub['id']}").json()["status"] == "paused"
    clock.set(utc(2026, 4, 5, 9))
    response = api.post(f"/v1/subscriptions/{sub['id']}/resume", {})
    assert response.status_code == 422 and response.json()["error"]["field"] == "payment_method"
    card = add_card(account, default=False)
    body = api.post(f"/v1/subscriptions/{sub['id']}/resume", {"payment_method": card.public_id}).json()
    assert body["status"] == "active" and body["payment_method"] == card.public_id
    assert body["current_period_start"] == "2026-04-05T09:00:00Z"
    assert body["current_period_end"] == "2026-05-05T09:00:00Z"
    assert body["billing_anchor_day"] == 5
