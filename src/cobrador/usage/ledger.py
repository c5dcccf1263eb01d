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
