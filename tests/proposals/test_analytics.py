from datetime import date

import pytest
from django.db import transaction

from cobrador.proposals import services
from cobrador.proposals.models import Proposal
from tests.proposals.factories import make_proposal
from tests.subscriptions.conftest import make_plan, sweep, utc

pytestmark = pytest.mark.django_db


def _at(clock, moment, action, proposal):
    clock.set(moment)
    with transaction.atomic():
        action(proposal=Proposal.objects.select_related("organization", "account").get(pk=proposal.pk))


def _sent(clock, organization, plan, moment, expires_on=date(2026, 5, 30)):
    clock.set(moment)
    return make_proposal(organization, expires_on=expires_on, plan=plan)


def test_metrics_against_a_hand_computed_fixture(api, other_api, clock):
    org, plan = api.organization, make_plan(api.organization)
    view, accept = services.record_view, services.accept_proposal
    # Three accepted (views after 1 h, 2 h, 30 min; acceptances after 1 day, 2 days, 6 h) ...
    a = _sent(clock, org, plan, utc(2026, 3, 1, 15))
    _at(clock, utc(2026, 3, 1, 16), view, a)
    _at(clock, utc(2026, 3, 2, 15), accept, a)
    b = _sent(clock, org, plan, utc(2026, 3, 2, 15))
    _at(clock, utc(2026, 3, 2, 17), view, b)
    _at(clock, utc(2026, 3, 4, 15), accept, b)
    c = _sent(clock, org, plan, utc(2026, 3, 3, 15))
    _at(clock, utc(2026, 3, 3, 15, 30), view, c)
    _at(clock, utc(2026, 3, 3, 21), accept, c)
    # ... one expired without a view, one canceled by the seller (no answer: out of the rate) ...
    d = _sent(clock, org, plan, utc(2026, 3, 1, 15), expires_on=date(2026, 3, 5))
    g = _sent(clock, org, plan, utc(2026, 3, 10, 15))
    _at(clock, utc(2026, 3, 10, 16), services.cancel_proposal, g)
    sweep("proposal-expiration", utc(2026, 3, 6, 3, 30))
    # ... two still open: one viewed after 1 h, and one sent in April never viewed.
    e = _sent(clock, org, plan, utc(2026, 3, 5, 15))
    _at(clock, utc(2026, 3, 5, 16), view, e)
    _sent(clock, org, plan, utc(2026, 4, 2, 15))
    # Not in the cohort: a draft, a proposal sent before `from`, another organization's.
    make_proposal(org, expires_on=date(2026, 5, 30), plan=plan, send=False)
    _sent(clock, org, plan, utc(2026, 3, 1, 2, 59))  # 23:59 on Feb 28 in Sao Paulo
    make_proposal(other_api.organization, expires_on=date(2026, 5, 30))
    assert Proposal.objects.get(pk=d.pk).status == "expired"

    response = api.get("/v1/analytics/proposals", params={"from": "2026-03-01T00:00:00-03:00",
                                                          "to": "2026-05-01T00:00:00-03:00"})

    assert response.status_code == 200, response.content
    data = response.json()
    assert {k: data[k] for k in ("sent", "viewed", "open", "accepted", "declined", "expired", "canceled",
                                 "conversion_rate")} == {
        "sent": 7, "viewed": 4, "open": 2, "accepted": 3, "declined": 0, "expired": 1, "canceled": 1,
        "conversion_rate": 0.75}
    # Views: 3600, 7200, 1800, 3600 s. Acceptances: 86400, 172800, 21600 s.
    assert data["time_to_first_view"] == {"count": 4, "mean_seconds": 4050, "median_seconds": 3600,
                                          "p90_seconds": 7200}
    assert data["time_to_acceptance"] == {"count": 3, "mean_seconds": 93600, "median_seconds": 86400,
                                          "p90_seconds": 172800}
    assert [(m["month"], m["sent"], m["open"], m["conversion_rate"]) for m in data["by_month"]] == [
        ("2026-03", 6, 1, 0.75), ("2026-04", 1, 1, None)]
    assert (data["from"], data["to"]) == ("2026-03-01T00:00:00-03:00", "2026-05-01T00:00:00-03:00")


def test_the_period_must_be_aware_and_ordered(api, clock):
    assert api.get("/v1/analytics/proposals", params={"from": "2026-03-01T00:00:00"}).json()["error"]["field"] == "from"
    bad = api.get("/v1/analytics/proposals", params={"from": "2026-03-02T00:00:00Z", "to": "2026-03-01T00:00:00Z"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "from"
    empty = api.get("/v1/analytics/proposals").json()
    assert empty["sent"] == 0 and empty["conversion_rate"] is None and empty["by_month"] == []
