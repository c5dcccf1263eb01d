"""Reading the MRR ledger: MRR at a moment, movements over a span, and an organization's local days.

MRR at `t` is the sum of the deltas of the movements before `t`, so for any span
MRR(start) + new + expansion + reactivation - contraction - churn = MRR(end) holds exactly."""

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db import connection
from django.db.models import Case, Count, DateField, Func, Sum, Value, When
from django.db.models.functions import Abs, TruncDate

from cobrador.usage.models import MrrMovement

KINDS = ("new", "expansion", "contraction", "churn", "reactivation")


def local_day_bounds(timezone: str, day: date) -> tuple[datetime, datetime]:
    """The UTC instants a local day in `timezone` starts and ends at (the end is exclusive)."""
    zone = ZoneInfo(timezone)
    return (datetime.combine(day, time(), zone), datetime.combine(day + timedelta(days=1), time(), zone))


def local_day_of(timezone: str, at: datetime) -> date:
    """The local day in `timezone` that the instant `at` falls on."""
    return at.astimezone(ZoneInfo(timezone)).date()


def mrr_at(*, organization, at: datetime, currency: str = "BRL") -> int:
    total = MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__lt=at).aggregate(
        total=Sum("delta"))["total"]
    return total or 0


def movements_between(*, organization, start: datetime, end: datetime, currency: str = "BRL") -> dict:
    """Amounts (positive, centavos) and counts of each kind in [start, end), churn split by type."""
    rows = (MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__gte=start,
                                       occurred_at__lt=end)
            .values("kind", "churn_type").annotate(amount=Sum("delta"), count=Count("pk")))
    totals = empty_movements()
    for row in rows:
        totals[row["kind"]] += abs(row["amount"])
        totals[f"{row['kind']}_count"] += row["count"]
        if row["kind"] == "churn":
            totals[f"churn_{row['churn_type']}"] += abs(row["amount"])
    return totals


def empty_movements() -> dict:
    return {kind: 0 for kind in KINDS} | {f"{kind}_count": 0 for kind in KINDS} | {
        "churn_voluntary": 0, "churn_involuntary": 0}


class _FixedOffsetDate(Func):
    """SQLite: the local date of a UTC timestamp column under a fixed UTC offset, with SQLite's own date()
    (Django's TruncDate calls a Python function per row there)."""

    output_field = DateField()

    def __init__(self, expression, minutes: int):
        super().__init__(expression)
        self.minutes = minutes

    def as_sql(self, compiler, connection, **extra):
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date({sql}, '{self.minutes:+d} minutes')", params


def local_date(field: str, *, timezone: str, first: date, last: date):
    """An expression for the local date (in `timezone`) of the timestamp column `field`, for rows in the
    local days [first, last]: the database's own time-zone conversion on PostgreSQL; on SQLite a fixed
    offset when the zone keeps one over the span (America/Sao_Paulo since 2019), else Django's TruncDate."""
    zone = ZoneInfo(timezone)
    if connection.vendor == "sqlite":
        offsets = {datetime.combine(first + timedelta(days=i), time(12), zone).utcoffset()
                   for i in range((last - first).days + 2)}
        offsets |= {local_day_bounds(timezone, first)[0].utcoffset(), local_day_bounds(timezone, last)[1].utcoffset()}
        if len(offsets) == 1:
            return _FixedOffsetDate(field, int(offsets.pop().total_seconds() // 60))
    return TruncDate(field, tzinfo=zone)


def movements_by_day(*, organization, first: date, last: date, currency: str = "BRL") -> dict[date, dict]:
    """Per local day in [first, last]: the movements as `movements_between` counts them, plus the day's
    net MRR change (`net`) and change of paying customers (`paying`), grouped by the database."""
    start = local_day_bounds(organization.timezone, first)[0]
    end = local_day_bounds(organization.timezone, last)[1]
    days: dict[date, dict] = {}
    for row in (MrrMovement.objects.filter(organization=organization, currency=currency, occurred_at__gte=start,
                                           occurred_at__lt=end)
                .annotate(local_day=local_date("occurred_at", timezone=organization.timezone, first=first, last=last))
                .values("local_day", "kind", "churn_type")
                .annotate(amount=Sum(Abs("delta")), count=Count("pk"), net=Sum("delta"),
                          paying=Sum(Case(When(mrr_before=0, mrr_after__gt=0, then=Value(1)),
                                          When(mrr_before__gt=0, mrr_after=0, then=Value(-1)), default=Value(0))))
                .order_by()):
        day = days.setdefault(row["local_day"], {**empty_movements(), "net": 0, "paying": 0})
        day[row["kind"]] += row["amount"]
        day[f"{row['kind']}_count"] += row["count"]
        if row["kind"] == "churn":
            day[f"churn_{row['churn_type']}"] += row["amount"]
        day["net"] += row["net"]
        day["paying"] += row["paying"]
    return days


def walk_days(*, organization, days: list[date], mrr: int, active: int, currency: str = "BRL"):
    """For consecutive local `days`, starting from the balance (`mrr`, paying customers `active`) at the
    first day's start: yields (day, mrr_at_start, mrr, active, movements) with the day's movements as
    `movements_between` counts them. One grouped read of the movements of those days."""
    if not days:
        return
    grouped = movements_by_day(organization=organization, first=days[0], last=days[-1], currency=currency)
    for day in days:
        found = grouped.get(day)
        mrr_start = mrr
        if found is None:
            yield day, mrr, mrr, active, empty_movements()
            continue
        mrr += found.pop("net")
        active += found.pop("paying")
        yield day, mrr_start, mrr, active, found
