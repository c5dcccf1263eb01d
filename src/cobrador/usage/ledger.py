"""Reading the MRR ledger: MRR at a moment, movements over a span, and an organization's local days.

MRR at `t` is the sum of the deltas of the movements before `t`, so for any span
MRR(start) + new + expansion + reactivation - contraction - churn = MRR(end) holds exactly."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum

from cobrador.usage.models import MrrMovement

KINDS = ("new", "expansion", "contraction", "churn", "reactivation")


def local_day_bounds(timezone: str, day: date) -> tuple[datetime, datetime]:
    """The UTC instants a local day in `timezone` starts and ends at (the end is exclusive)."""
    zone = ZoneInfo(timezone)
    return (datetime.combine(day, time(), zone), datetime.combine(day + timedelta(days=1), time(), zone))


def mrr_at(*, organization, at: datetime, currency: str = "BRL") -> int:
    total = MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__lt=at).aggregate(
        total=Sum("delta"))["total"]
    return total or 0


def movements_between(*, organization, start: datetime, end: datetime, currency: str = "BRL") -> dict:
    """Amounts (positive, centavos) and counts of each kind in [start, end), churn split by type."""
    rows = (MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__gte=start,
                                       occurred_at__lt=end)
            .values("kind", "churn_type").annotate(amount=Sum("delta"), count=Count("pk")))
    totals = {kind: 0 for kind in KINDS} | {f"{kind}_count": 0 for kind in KINDS}
    totals |= {"churn_voluntary": 0, "churn_involuntary": 0}
    for row in rows:
        totals[row["kind"]] += abs(row["amount"])
        totals[f"{row['kind']}_count"] += row["count"]
        if row["kind"] == "churn":
            totals[f"churn_{row['churn_type']}"] += abs(row["amount"])
    return totals


def empty_movements() -> dict:
    return {kind: 0 for kind in KINDS} | {f"{kind}_count": 0 for kind in KINDS} | {
        "churn_voluntary": 0, "churn_involuntary": 0}


def walk_days(*, organization, days: list[date], mrr: int, active: int, currency: str = "BRL"):
    """For consecutive local `days`, starting from the balance (`mrr`, paying customers `active`) at the
    first day's start: yields (day, mrr_at_start, mrr, active, movements) with the day's movements as
    `movements_between` counts them. One ordered read of the movements of those days."""
    if not days:
        return
    start = local_day_bounds(organization.timezone, days[0])[0]
    end = local_day_bounds(organization.timezone, days[-1])[1]
    walk = (MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__gte=start,
                                       occurred_at__lt=end)
            .order_by("occurred_at", "pk").values_list("occurred_at", "kind", "churn_type", "mrr_before", "mrr_after")
            .iterator(chunk_size=5000))
    pending = next(walk, None)
    for day in days:
        day_end = local_day_bounds(organization.timezone, day)[1]
        mrr_start, movements = mrr, empty_movements()
        while pending is not None and pending[0] < day_end:
            _, kind, churn_type, before, after = pending
            movements[kind] += abs(after - before)
            movements[f"{kind}_count"] += 1
            if kind == "churn":
                movements[f"churn_{churn_type}"] += abs(after - before)
            mrr += after - before
            active += (after > 0) - (before > 0)
            pending = next(walk, None)
        yield day, mrr_start, mrr, active, movements
