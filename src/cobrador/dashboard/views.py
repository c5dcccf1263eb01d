"""The dashboard pages. Every figure comes from the same reads as /v1/analytics (`usage/analytics.py`,
snapshots first, today from the ledger), plus dunning's recovery and the proposal funnel analytics.

Who sees what: a signed-in user sees the organizations they are a member of; staff see every one. Any
other organization id answers 404, the same as an id that does not exist. Signing in is Django's login
form, throttled by django-axes (settings.AXES_*: a 429 after too many failures)."""

from datetime import date, timedelta

from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy

from cobrador.dashboard import charts
from cobrador.dunning.analytics import recovery_analytics
from cobrador.notifications import formatting
from cobrador.organizations.models import Organization
from cobrador.proposals.analytics import proposal_analytics
from cobrador.usage import analytics
from cobrador.usage.errors import InvalidRange
from cobrador.usage.ledger import local_day_bounds

LOGIN_URL = reverse_lazy("dashboard:login")
DEFAULT_DAYS = 90
PRESETS = (("30 days", 30, "day"), ("90 days", 90, "day"), ("12 months", 365, "month"), ("24 months", 730, "month"))
EXPORTS = ("mrr", "movements", "cohorts")


class DashboardLoginView(LoginView):
    template_name = "dashboard/login.html"
    redirect_authenticated_user = True
    next_page = reverse_lazy("dashboard:home")


def visible_organizations(user):
    organizations = Organization.objects.order_by("name", "pk")
    return organizations if user.is_staff else organizations.filter(memberships__user=user)


def organization_for(request, org_id: str) -> Organization:
    organization = visible_organizations(request.user).filter(public_id=org_id).first()
    if organization is None:
        raise Http404("no such organization")
    return organization


@login_required(login_url=LOGIN_URL)
def home(request):
    organizations = list(visible_organizations(request.user)[:500])
    if len(organizations) == 1 and not request.user.is_staff:
        return redirect("dashboard:organization", org_id=organizations[0].public_id)
    return render(request, "dashboard/home.html", {"organizations": organizations})


def _parse_day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def selected_range(request, organization) -> tuple[date, date, str, str]:
    """(from, to, interval, problem): the range in the query, or the last 90 days, checked like the API's."""
    interval = request.GET.get("interval") if request.GET.get("interval") in ("day", "month") else "day"
    first, last = _parse_day(request.GET.get("from")), _parse_day(request.GET.get("to"))
    if first is None and last is None:
        last = analytics.local_today(organization)
        first = last - timedelta(days=DEFAULT_DAYS - 1)
    try:
        first, last = analytics.resolve_range(organization, first, last, interval)
        return first, last, interval, ""
    except InvalidRange as problem:
        last = analytics.local_today(organization)
        return last - timedelta(days=DEFAULT_DAYS - 1), last, "day", problem.message


def _money(amount) -> str:
    return formatting.money(amount, "BRL", "pt-BR") if amount is not None else "—"


def _percent(rate) -> str:
    return f"{rate * 100:.1f}%".replace(".", ",") if rate is not None else "—"


@login_required(login_url=LOGIN_URL)
def organization_dashboard(request, org_id: str):
    organizations = list(visible_organizations(request.user)[:500])  # the switcher's, and usually this one
    organization = next((o for o in organizations if o.public_id == org_id), None) or organization_for(request, org_id)
    first, last, interval, problem = selected_range(request, organization)
    points = analytics.points(organization, first=first, last=last, interval=interval)
    summary = analytics.summary(organization)
    totals = analytics.totals(points)
    start = local_day_bounds(organization.timezone, first)[0]
    end = local_day_bounds(organization.timezone, last)[1]
    recovery = recovery_analytics(organization=organization, start=start, end=end)
    funnel = proposal_analytics(organization=organization, start=start, end=end)
    cohort_table = analytics.cohorts(organization, analytics.months_back(last, 11), last)
    max_age = max((age["age_months"] for c in cohort_table for age in c["ages"]), default=-1)
    cohort_rows = [{
        "cohort_month": cohort["cohort_month"], "customers": cohort["customers"],
        "starting_mrr": _money(cohort["starting_mrr"]),
        "cells": [next(({"rate": _percent(a["net_revenue_retention"]), "logo": _percent(a["logo_retention"]),
                         "color": charts.heat_color(a["net_revenue_retention"]), "active": a["active_customers"],
                         "mrr": _money(a["mrr"])} for a in cohort["ages"] if a["age_months"] == age), None)
                  for age in range(max_age + 1)]} for cohort in cohort_table]
    query = f"?from={first.isoformat()}&to={last.isoformat()}&interval={interval}"
    sent = funnel["sent"] or 0
    context = {
        "organization": organization, "organizations": organizations,
        "first": first, "last": last, "interval": interval, "problem": problem,
        "presets": [{"label": label, "from": (last - timedelta(days=days - 1)).isoformat(), "to": last.isoformat(),
                     "interval": preset_interval} for label, days, preset_interval in PRESETS],
        "kpis": [("MRR", _money(summary["mrr"]), "mrr"), ("ARR", _money(summary["arr"]), "arr"),
                 ("Paying customers", summary["active_customers"], "customers"),
                 ("ARPA", _money(summary["arpa"]), "arpa"),
                 ("Net MRR this month", _money(summary["month"]["net_change"]), "month-net"),
                 ("MRR churn this month", _percent(summary["month_mrr_churn_rate"]), "month-churn")],
        "totals": {name: _money(value) if not name.endswith("_count") else value for name, value in totals.items()},
        "movements_chart": charts.movements_chart(points, interval),
        "customers_chart": charts.line_chart(points, "active_customers", chart_id="customers-chart",
                                             label="paying customers", interval=interval),
        "recovery": {**recovery, "failed_amount": _money(recovery["failed_amount"]),
                     "recovered_amount": _money(recovery["recovered_amount"]),
                     "rate": _percent(recovery["recovery_rate"]),
                     "by_method": [{**m, "rate": _percent(m["recovery_rate"])} for m in recovery["by_method"]]},
        "funnel": [{"label": label, "count": funnel[key], "width": round(100 * funnel[key] / sent) if sent else 0}
                   for label, key in (("Sent", "sent"), ("Viewed", "viewed"), ("Accepted", "accepted"),
                                      ("Declined", "declined"), ("Expired", "expired"))],
        "conversion": _percent(funnel["conversion_rate"]),
        "cohort_ages": list(range(max_age + 1)), "cohort_rows": cohort_rows,
        "exports": [(kind, reverse("dashboard:export", args=[organization.public_id, kind]) + query)
                    for kind in EXPORTS],
        "partial": any(p["partial"] for p in points),
    }
    response = render(request, "dashboard/dashboard.html", context)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required(login_url=LOGIN_URL)
def export_csv(request, org_id: str, kind: str):
    organization = organization_for(request, org_id)
    if kind not in EXPORTS:
        raise Http404("no such export")
    first, last, interval, _ = selected_range(request, organization)
    if kind == "cohorts":
        body = analytics.cohorts_csv(analytics.cohorts(organization, first, last))
    else:
        points = analytics.points(organization, first=first, last=last, interval=interval)
        body = (analytics.mrr_csv if kind == "mrr" else analytics.movements_csv)(points)
    response = HttpResponse(body, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="{organization.public_id}-{kind}-{interval}-'
                                       f'{first.isoformat()}-{last.isoformat()}.csv"')
    response["Cache-Control"] = "private, no-store"
    return response
