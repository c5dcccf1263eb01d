"""GET /v1/analytics/summary, /mrr, /movements and /cohorts: figures from the snapshots, today from the
ledger, CSV with Accept: text/csv, range errors, and each organization seeing only its own."""

import csv
import io
from datetime import date, timedelta

import pytest
from django.db import transaction

from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription
from cobrador.usage.models import UsageDailySnapshot
from tests.subscriptions.conftest import make_account, make_plan, subscribe, sweep, utc


@pytest.fixture
def history(api, clock):
    """Jan 10: A (R$ 100) and B (2 x R$ 100) subscribe; Feb 10: C subscribes, A cancels at once. The jobs
    run on Mar 1 (00:45 in São Paulo); then, on Mar 1 itself, D subscribes (R$ 50): today, partial."""
    org = api.organization
    org.created_at = utc(2026, 1, 10, 12)
    org.save(update_fields=["created_at"])
    plan, small = make_plan(org, amount=10000), make_plan(org, amount=5000, name="Small")
    clock.set(utc(2026, 1, 10, 12))
    a = subscribe(org, make_account(org, name="A"), plan)
    subscribe(org, make_account(org, name="B"), plan, quantity=2)
    clock.set(utc(2026, 2, 10, 15))
    subscribe(org, make_account(org, name="C"), plan)
    with transaction.atomic():
        cancel_subscription(subscription=Subscription.objects.get(pk=a.pk), immediately=True)
    assert sweep("usage-daily-snapshot", utc(2026, 3, 1, 3, 45)).status == "succeeded"
    assert sweep("usage-monthly-snapshot", utc(2026, 3, 1, 3, 50)).status == "succeeded"
    clock.set(utc(2026, 3, 1, 14))
    subscribe(org, make_account(org, name="D"), small)
    clock.set(utc(2026, 3, 1, 18))
    return api


def test_daily_mrr_comes_from_the_snapshots_and_today_from_the_ledger(history):
    body = history.get("/v1/analytics/mrr", params={"from": "2026-01-09", "to": "2026-03-05"}).json()
    points = body["points"]
    assert (body["from"], body["to"], body["interval"]) == ("2026-01-09", "2026-03-05", "day")
    # From the organization's first day to today; nothing before its creation or after today.
    assert points[0]["period"] == "2026-01-10" and points[-1]["period"] == "2026-03-01"
    assert len(points) == (date(2026, 3, 1) - date(2026, 1, 10)).days + 1
    by_day = {p["period"]: p for p in points}
    assert by_day["2026-01-10"]["mrr"] == 30000 and by_day["2026-01-10"]["active_customers"] == 2
    assert by_day["2026-02-10"]["mrr"] == 30000 and by_day["2026-02-10"]["net_change"] == 0
    assert (by_day["2026-02-28"]["mrr"], by_day["2026-02-28"]["partial"]) == (30000, False)
    today = by_day["2026-03-01"]
    assert (today["mrr_at_start"], today["mrr"], today["arr"], today["active_customers"], today["partial"]) == (
        30000, 35000, 12 * 35000, 3, True)
    for before, after in zip(points, points[1:], strict=False):
        assert after["mrr_at_start"] == before["mrr"]


def test_the_api_reads_the_snapshot_rows(history):
    # A snapshot is the record: the API serves what it says (here altered by hand), not a recomputation.
    UsageDailySnapshot.objects.filter(organization=history.organization, day=date(2026, 2, 27)).update(mrr=12345)
    body = history.get("/v1/analytics/mrr", params={"from": "2026-02-27", "to": "2026-02-27"}).json()
    assert [p["mrr"] for p in body["points"]] == [12345]


def test_movements_reconcile_over_the_range_and_per_month(history):
    body = history.get("/v1/analytics/movements", params={"from": "2026-01-01", "to": "2026-03-31"}).json()
    totals = body["totals"]
    assert (totals["mrr_at_start"], totals["new"], totals["churn"], totals["churn_voluntary"], totals["mrr"]) == (
        0, 45000, 10000, 10000, 35000)
    assert (totals["new_count"], totals["churn_count"]) == (4, 1)
    assert totals["mrr_at_start"] + totals["net_change"] == totals["mrr"]

    months = history.get("/v1/analytics/movements",
                         params={"from": "2026-01-01", "to": "2026-03-31", "interval": "month"}).json()["points"]
    assert [(p["period"], p["new"], p["churn"], p["partial"]) for p in months] == [
        ("2026-01-01", 30000, 0, False), ("2026-02-01", 10000, 10000, False), ("2026-03-01", 5000, 0, True)]
    mrr = history.get("/v1/analytics/mrr", params={"from": "2026-01-01", "to": "2026-03-31",
                                                   "interval": "month"}).json()["points"]
    assert [(p["mrr_at_start"], p["mrr"]) for p in mrr] == [(0, 30000), (30000, 30000), (30000, 35000)]


def test_the_summary_is_now(history):
    body = history.get("/v1/analytics/summary").json()
    assert (body["today"], body["mrr"], body["arr"], body["active_customers"], body["arpa"]) == (
        "2026-03-01", 35000, 420000, 3, round(35000 / 3))
    assert (body["month"]["period"], body["month"]["new"], body["month"]["mrr_at_start"]) == ("2026-03-01", 5000, 30000)
    assert body["month_mrr_churn_rate"] == 0.0
    # Jan 31 - Mar 1: C arrives and A leaves on Feb 10, D today.
    assert (body["last_30_days"]["new"], body["last_30_days"]["churn"], body["last_30_days"]["mrr"]) == (
        15000, 10000, 35000)


def test_cohorts_by_first_paid_month(history):
    body = history.get("/v1/analytics/cohorts", params={"from": "2026-01-01", "to": "2026-02-28"}).json()
    january, february = body["cohorts"]
    assert (january["cohort_month"], january["customers"], january["starting_mrr"]) == ("2026-01-01", 2, 30000)
    assert [(a["age_months"], a["active_customers"], a["mrr"], a["logo_retention"], a["net_revenue_retention"])
            for a in january["ages"]] == [(0, 2, 30000, 1.0, 1.0), (1, 1, 20000, 0.5, 0.6667)]
    assert (february["cohort_month"], february["customers"], february["ages"][0]["mrr"]) == ("2026-02-01", 1, 10000)


def test_each_figure_as_csv_with_accept_text_csv(history):
    response = history.get("/v1/analytics/mrr", params={"from": "2026-02-27", "to": "2026-03-01"},
                           headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert [(r["period"], r["mrr"], r["partial"]) for r in rows] == [
        ("2026-02-27", "30000", "False"), ("2026-02-28", "30000", "False"), ("2026-03-01", "35000", "True")]
    movements = history.get("/v1/analytics/movements", params={"from": "2026-03-01"}, headers={"Accept": "text/csv"})
    [today] = list(csv.DictReader(io.StringIO(movements.content.decode())))
    assert (today["new"], today["new_count"], today["churn"]) == ("5000", "1", "0")
    cohorts = history.get("/v1/analytics/cohorts", params={"from": "2026-01-01"}, headers={"Accept": "text/csv"})
    assert cohorts.content.decode().splitlines()[0].startswith("cohort_month,customers,starting_mrr,age_months")
    assert len(cohorts.content.decode().splitlines()) == 1 + 3
    summary = history.get("/v1/analytics/summary", headers={"Accept": "text/csv"}).content.decode()
    assert "mrr,35000" in summary.splitlines()
    # JSON stays the default, and what the client prefers wins.
    assert history.get("/v1/analytics/summary")["Content-Type"] == "application/json; charset=utf-8"
    assert history.get("/v1/analytics/summary", headers={"Accept": "application/json, text/csv;q=0.5"})[
        "Content-Type"].startswith("application/json")


@pytest.mark.parametrize(("params", "field"), [
    ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
    ({"from": "1999-12-31"}, "from"),
    ({"to": "2101-01-01"}, "to"),
    ({"from": "2020-01-01", "to": "2026-03-01"}, "from"),  # more than 1100 days at once
])
def test_a_range_that_cannot_be_served_is_a_422_naming_the_field(history, params, field):
    response = history.get("/v1/analytics/mrr", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["type"] == "invalid_range" and response.json()["error"]["field"] == field


@pytest.mark.parametrize("params", [{"from": "2026-13-01"}, {"to": "1700000000"}, {"interval": "week"}])
def test_malformed_parameters_are_a_422(history, params):
    response = history.get("/v1/analytics/movements", params=params)
    assert response.status_code == 422 and response.json()["error"]["type"] == "validation_error"


def test_another_organization_sees_none_of_it(history, other_api):
    other = other_api.organization
    other.created_at = utc(2026, 1, 1)
    other.save(update_fields=["created_at"])
    summary = other_api.get("/v1/analytics/summary").json()
    assert (summary["mrr"], summary["active_customers"]) == (0, 0)
    points = other_api.get("/v1/analytics/mrr", params={"from": "2026-01-01", "to": "2026-03-01"}).json()["points"]
    assert {p["mrr"] for p in points} == {0}
    assert other_api.get("/v1/analytics/cohorts").json()["cohorts"] == []
    assert history.get("/v1/analytics/summary").json()["mrr"] == 35000


def test_a_new_organization_with_no_snapshot_yet_is_read_from_the_ledger(api, clock):
    org = api.organization
    org.created_at = clock.now() - timedelta(days=3)
    org.save(update_fields=["created_at"])
    clock.set(clock.now() - timedelta(days=2))
    subscribe(org, make_account(org), make_plan(org, amount=10000))
    clock.set(clock.now() + timedelta(days=2))
    points = api.get("/v1/analytics/mrr").json()["points"]
    assert [p["mrr"] for p in points] == [0, 10000, 10000, 10000]
    assert all(p["partial"] for p in points)
