"""Reading the analytics: MRR balances and movements per local day or month, the summary and the cohort
table, as the API (`usage/api.py`) and the dashboard show them.

Everything up to the last stored day comes from the snapshots (`UsageDailySnapshot`,
`UsageMonthlySnapshot`, `UsageCohortRow`); the days after it (today, partial, and any day the daily job
has not reached yet) are computed from the MRR ledger, walking forward from the last snapshot's balance:
a read never aggregates the ledger's whole history. Those days carry `partial: true`.
"""

import csv
import io
import json
import operator
from datetime import date, timedelta

from django.db.models import TextField
from django.db.models.functions import Cast

from cobrador.core import clock
from cobrador.usage.errors import InvalidRange
from cobrador.usage.ledger import KINDS, empty_movements, local_day_bounds, local_day_of, walk_days
from cobrador.usage.models import UsageCohortRow, UsageDailySnapshot, UsageMonthlySnapshot
from cobrador.usage.snapshots import CURRENCY, balances_at, month_start, next_month

# The figures of one period (a day or a month), in this order in JSON and CSV.
MRR_FIELDS = ("mrr_at_start", "mrr", "arr", "active_customers", "net_change")
MOVEMENT_FIELDS = ("new", "expansion", "reactivation", "contraction", "churn", "churn_voluntary",
                   "churn_involuntary", "net_change", *(f"{kind}_count" for kind in KINDS))


EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)
MAX_DAYS = 1100  # three years of daily points
MAX_MONTHS = 240


def local_today(organization) -> date:
    return local_day_of(organization.timezone, clock.now())


def months_back(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def resolve_range(organization, first: date | None, last: date | None, interval: str) -> tuple[date, date]:
    """The range asked for, with the defaults (the last 30 days, or the last 12 months), checked."""
    for name, value in (("from", first), ("to", last)):
        if value is not None and not EARLIEST <= value <= LATEST:
            raise InvalidRange(f"{name}: must be between {EARLIEST} and {LATEST}", field=name)
    last = last or local_today(organization)
    if first is None:
        first = max(last - timedelta(days=29), EARLIEST) if interval == "day" else max(months_back(last, 11),
                                                                                      EARLIEST)
    if first > last:
        raise InvalidRange("from: must not be after to", field="from")
    if interval == "day" and (last - first).days + 1 > MAX_DAYS:
        raise InvalidRange(f"from: at most {MAX_DAYS} days per request with interval=day", field="from")
    if interval == "month" and (last.year - first.year) * 12 + last.month - first.month + 1 > MAX_MONTHS:
        raise InvalidRange(f"from: at most {MAX_MONTHS} months per request", field="from")
    return first, last


_FIGURE_NAMES = tuple(name for name in MOVEMENT_FIELDS if name != "net_change")
_pick_figures = operator.itemgetter(*_FIGURE_NAMES)


def _movement_figures(movements: dict) -> dict:
    try:
        figures = dict(zip(_FIGURE_NAMES, _pick_figures(movements), strict=True))
    except KeyError:  # an empty or partial set (no movement that day)
        figures = {name: movements.get(name, 0) for name in _FIGURE_NAMES}
    figures["net_change"] = (figures["new"] + figures["expansion"] + figures["reactivation"]
                             - figures["contraction"] - figures["churn"])
    return figures


def _point(period: date, *, mrr_at_start: int, mrr: int, active: int, movements: dict, partial: bool) -> dict:
    return {"period": period, "mrr_at_start": mrr_at_start, "mrr": mrr, "arr": 12 * mrr, "active_customers": active,
            "partial": partial, **_movement_figures(movements)}


def _ledger_days(organization, first: date, last: date, *, mrr: int, active: int) -> list[dict]:
    """Days `first`..`last` from the ledger, starting from the balance (`mrr`, `active`) at `first`'s start."""
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return [_point(day, mrr_at_start=start, mrr=end, active=paying, movements=movements, partial=True)
            for day, start, end, paying, movements in walk_days(organization=organization, days=days, mrr=mrr,
                                                               active=active, currency=CURRENCY)]


def daily_points(organization, first: date, last: date, *, with_movements: bool = True) -> list[dict]:
    """One point per local day in [first, last] that has data: the stored snapshots, then the days after
    the last snapshot (up to today) from the ledger. Days before the organization's first snapshot and
    after today have no point."""
    today = local_today(organization)
    last = min(last, today)
    if first > last:
        return []
    stored = UsageDailySnapshot.objects.filter(organization=organization, day__gte=first, day__lte=last).order_by("day")
    if with_movements:
        # The movements as text, decoded in one go (per row, decoding was most of a two-year read).
        rows = list(stored.annotate(raw=Cast("movements", TextField())).values_list(
            "day", "mrr_at_start", "mrr", "active_customers", "raw"))
        decoded = json.loads("[" + ",".join(row[4] for row in rows) + "]")
        points = [_point(day, mrr_at_start=start, mrr=end, active=paying, movements=movements, partial=False)
                  for (day, start, end, paying, _), movements in zip(rows, decoded, strict=True)]
    else:
        # The balances only (the MRR series): no movements to decode; their net is the MRR's change.
        points = [{"period": day, "mrr_at_start": start, "mrr": end, "arr": 12 * end, "active_customers": paying,
                   "partial": False, "net_change": end - start}
                  for day, start, end, paying in stored.values_list("day", "mrr_at_start", "mrr", "active_customers")]
    latest = (UsageDailySnapshot.objects.filter(organization=organization, day__lte=last).order_by("-day")
              .values("day", "mrr", "active_customers").first())
    if latest is not None:
        gap_first, mrr, active = latest["day"] + timedelta(days=1), latest["mrr"], latest["active_customers"]
    else:
        # No snapshot yet (a new organization, or before the first daily run): from the ledger alone.
        created = local_day_of(organization.timezone, organization.created_at)
        gap_first = max(first, created)
        balances = balances_at(organization=organization, at=local_day_bounds(organization.timezone, gap_first)[0])
        mrr, active = sum(m for m, _ in balances.values()), sum(1 for m, _ in balances.values() if m > 0)
    if gap_first <= last:
        # Walked from the last snapshot even when it is before `first`, for the balance at `first`.
        points += [p for p in _ledger_days(organization, gap_first, last, mrr=mrr, active=active)
                   if p["period"] >= first]
    return points


def _summed_movements(points_: list[dict]) -> dict:
    """The movements of these points added up."""
    summed = empty_movements()
    for point in points_:
        for name in summed:
            summed[name] += point[name]
    return summed


def _month_from_days(month: date, days: list[dict]) -> dict:
    return _point(month, mrr_at_start=days[0]["mrr_at_start"], mrr=days[-1]["mrr"],
                  active=days[-1]["active_customers"], movements=_summed_movements(days),
                  partial=any(point["partial"] for point in days))


def monthly_points(organization, first: date, last: date) -> list[dict]:
    """One point per local month in [first's month, last's month]: the stored monthly snapshot, or (the
    current month, or a month the monthly job has not consolidated yet) the sum of its days."""
    first, last = month_start(first), month_start(min(last, local_today(organization)))
    stored = {row["month"]: row for row in UsageMonthlySnapshot.objects.filter(
        organization=organization, month__gte=first, month__lte=last).values(
        "month", "mrr_at_start", "mrr", "active_customers", "movements")}
    points, month = [], first
    while month <= last:
        row = stored.get(month)
        if row is not None:
            points.append(_point(month, mrr_at_start=row["mrr_at_start"], mrr=row["mrr"],
                                 active=row["active_customers"], movements=row["movements"], partial=False))
        else:
            days = daily_points(organization, month, next_month(month) - timedelta(days=1))
            if days:
                points.append(_month_from_days(month, days))
        month = next_month(month)
    return points


def points(organization, *, first: date, last: date, interval: str, with_movements: bool = True) -> list[dict]:
    if interval == "day":
        return daily_points(organization, first, last, with_movements=with_movements)
    return monthly_points(organization, first, last)


def totals(points_: list[dict]) -> dict:
    """The movements over the whole range, and its opening and closing MRR (they reconcile exactly)."""
    if not points_:
        return {"mrr_at_start": 0, "mrr": 0, **_movement_figures({})}
    return {"mrr_at_start": points_[0]["mrr_at_start"], "mrr": points_[-1]["mrr"],
            **_movement_figures(_summed_movements(points_))}


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summary(organization) -> dict:
    """Now: MRR, ARR, paying customers and ARPA; this local month so far and the last 30 days."""
    today = local_today(organization)
    since = min(month_start(today), today - timedelta(days=29))
    days = daily_points(organization, since, today)
    month = [p for p in days if p["period"] >= month_start(today)]
    last_30 = [p for p in days if p["period"] >= today - timedelta(days=29)]
    now_point = month[-1] if month else None
    mrr = now_point["mrr"] if now_point else 0
    active = now_point["active_customers"] if now_point else 0
    this_month = totals(month)
    return {
        "object": "analytics_summary", "as_of": clock.now(), "today": today, "currency": CURRENCY,
        "timezone": organization.timezone, "mrr": mrr, "arr": 12 * mrr, "active_customers": active,
        "arpa": round(mrr / active) if active else None,
        "month": {"period": month_start(today), **this_month},
        "last_30_days": totals(last_30),
        # Churned MRR over the MRR the month started with; null when it started at 0.
        "month_mrr_churn_rate": _rate(this_month["churn"], this_month["mrr_at_start"]),
        "month_net_mrr_growth_rate": _rate(this_month["net_change"], this_month["mrr_at_start"]),
    }


def cohorts(organization, first: date, last: date) -> list[dict]:
    """The cohorts whose first paid month is in [first, last]: size, their MRR at the end of their first
    month, and at each month of age the customers still paying and their MRR (from the monthly job)."""
    rows = (UsageCohortRow.objects.filter(organization=organization, cohort_month__gte=month_start(first),
                                          cohort_month__lte=month_start(last))
            .order_by("cohort_month", "month").values("cohort_month", "month", "age_months", "customers",
                                                      "active_customers", "starting_mrr", "mrr"))
    table: dict[date, dict] = {}
    for row in rows:
        cohort = table.setdefault(row["cohort_month"], {"cohort_month": row["cohort_month"], "customers": 0,
                                                        "starting_mrr": 0, "ages": []})
        cohort["customers"], cohort["starting_mrr"] = row["customers"], row["starting_mrr"]
        cohort["ages"].append({
            "age_months": row["age_months"], "month": row["month"], "active_customers": row["active_customers"],
            "mrr": row["mrr"], "logo_retention": _rate(row["active_customers"], row["customers"]),
            "net_revenue_retention": _rate(row["mrr"], row["starting_mrr"])})
    return list(table.values())


# --- CSV ----------------------------------------------------------------------------------------------


def to_csv(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if value is None else value for value in row])
    return out.getvalue()


def mrr_csv(points_: list[dict]) -> str:
    fields = ["period", *MRR_FIELDS, "partial"]
    return to_csv(fields, [[point[f] for f in fields] for point in points_])


def movements_csv(points_: list[dict]) -> str:
    fields = ["period", *MOVEMENT_FIELDS, "partial"]
    return to_csv(fields, [[point[f] for f in fields] for point in points_])


def summary_csv(data: dict) -> str:
    rows = [[name, data[name]] for name in ("as_of", "today", "currency", "mrr", "arr", "active_customers", "arpa",
                                            "month_mrr_churn_rate", "month_net_mrr_growth_rate")]
    rows += [[f"month.{name}", value] for name, value in data["month"].items()]
    rows += [[f"last_30_days.{name}", value] for name, value in data["last_30_days"].items()]
    return to_csv(["figure", "value"], rows)


def cohorts_csv(table: list[dict]) -> str:
    fields = ["cohort_month", "customers", "starting_mrr", "age_months", "month", "active_customers", "mrr",
              "logo_retention", "net_revenue_retention"]
    return to_csv(fields, [[cohort["cohort_month"], cohort["customers"], cohort["starting_mrr"]]
                           + [age[f] for f in fields[3:]] for cohort in table for age in cohort["ages"]])
