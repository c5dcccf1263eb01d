"""Computing usage snapshots: one organization's local day or month, from the MRR ledger and the
billing tables. Pure reads plus one replace per row set; the sweeps in `usage/sweeps.py` call these
inside a transaction that holds the organization's row lock, so two workers never interleave."""

from collections import defaultdict
from datetime import date, datetime

from django.db.models import Count, Sum

from cobrador.core import clock
from cobrador.dunning.models import RecoveryRecord
from cobrador.invoicing.models import Invoice
from cobrador.payments.models import Payment
from cobrador.usage.ledger import local_day_bounds, movements_between
from cobrador.usage.models import (
    DEFINITION_VERSION,
    MrrMovement,
    UsageCohortRow,
    UsageDailySnapshot,
    UsageMonthlySnapshot,
)

CURRENCY = "BRL"


def balances_at(*, organization, at: datetime) -> dict[int, tuple[int, datetime]]:
    """Each customer's MRR at `at` and the moment they first paid: {account_id: (mrr, first_paid_at)}."""
    balances, first_paid = {}, {}
    for account_id, mrr_after, kind, occurred_at in (
            MrrMovement.objects.filter(organization=organization, currency=CURRENCY, occurred_at__lt=at)
            .order_by("account_id", "occurred_at", "pk").values_list("account_id", "mrr_after", "kind",
                                                                     "occurred_at").iterator(chunk_size=5000)):
        balances[account_id] = mrr_after
        if kind == "new" and account_id not in first_paid:
            first_paid[account_id] = occurred_at
    return {account_id: (mrr, first_paid.get(account_id)) for account_id, mrr in balances.items()}


def _mrr_and_active(organization, at: datetime) -> tuple[int, int]:
    balances = balances_at(organization=organization, at=at)
    return sum(m for m, _ in balances.values()), sum(1 for m, _ in balances.values() if m > 0)


def daily_snapshot_values(*, organization, day: date, mrr_start: int, mrr: int, active: int) -> dict:
    """The day's row; its MRR figures come from the caller's walk over the ledger."""
    start, end = local_day_bounds(organization.timezone, day)
    invoices = Invoice.objects.filter(organization=organization, created_at__gte=start, created_at__lt=end).exclude(
        status="draft").aggregate(count=Count("pk"), amount=Sum("total"))
    by_method = {}
    for row in (Payment.objects.filter(organization=organization, paid_at__gte=start, paid_at__lt=end,
                                       status__in=("succeeded", "refunded"))
                .values("method").annotate(count=Count("pk"), amount=Sum("amount_paid")).order_by("method")):
        by_method[row["method"]] = {"count": row["count"], "amount": row["amount"] or 0}
    failed = Payment.objects.filter(organization=organization, failed_at__gte=start, failed_at__lt=end).count()
    recovered = RecoveryRecord.objects.filter(organization=organization, outcome="succeeded", attempted_at__gte=start,
                                              attempted_at__lt=end).aggregate(amount=Sum("amount"))["amount"]
    return {
        "currency": CURRENCY, "definition_version": DEFINITION_VERSION, "mrr": mrr, "arr": 12 * mrr,
        "mrr_at_start": mrr_start, "active_customers": active,
        "movements": movements_between(organization=organization, start=start, end=end, currency=CURRENCY),
        "invoices_issued": invoices["count"], "invoices_issued_amount": invoices["amount"] or 0,
        "payments_received": sum(m["count"] for m in by_method.values()),
        "payments_received_amount": sum(m["amount"] for m in by_method.values()),
        "payments_by_method": by_method, "payments_failed": failed, "recovered_by_dunning": recovered or 0,
    }


def write_daily_snapshots(*, organization, days: list[date]) -> list[UsageDailySnapshot]:
    """Compute and replace these consecutive days' rows (a rerun writes the same values again). The
    balances at the first day's start are read once; the days after walk the ledger forward, so a long
    catch-up reads each movement once instead of the whole ledger per day."""
    if not days:
        return []
    now = clock.now()
    days = sorted(days)
    balances = {account_id: mrr for account_id, (mrr, _) in balances_at(
        organization=organization, at=local_day_bounds(organization.timezone, days[0])[0]).items()}
    mrr, active = sum(balances.values()), sum(1 for m in balances.values() if m > 0)
    walk = (MrrMovement.objects.filter(organization=organization, currency=CURRENCY,
                                       occurred_at__gte=local_day_bounds(organization.timezone, days[0])[0],
                                       occurred_at__lt=local_day_bounds(organization.timezone, days[-1])[1])
            .order_by("occurred_at", "pk").values_list("account_id", "mrr_after", "occurred_at").iterator(
                chunk_size=5000))
    pending = next(walk, None)
    rows = []
    for day in days:
        end = local_day_bounds(organization.timezone, day)[1]
        mrr_start = mrr
        while pending is not None and pending[2] < end:
            account_id, after, _ = pending
            before = balances.get(account_id, 0)
            mrr += after - before
            active += (after > 0) - (before > 0)
            balances[account_id] = after
            pending = next(walk, None)
        rows.append(UsageDailySnapshot(organization=organization, day=day, computed_at=now, **daily_snapshot_values(
            organization=organization, day=day, mrr_start=mrr_start, mrr=mrr, active=active)))
    UsageDailySnapshot.objects.filter(organization=organization, day__in=days).delete()
    return UsageDailySnapshot.objects.bulk_create(rows)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def write_monthly_snapshot(*, organization, month: date) -> UsageMonthlySnapshot:
    """The month's row and its cohort rows, replacing any earlier computation of the same month."""
    now = clock.now()
    start = local_day_bounds(organization.timezone, month)[0]
    end = local_day_bounds(organization.timezone, next_month(month))[0]
    balances = balances_at(organization=organization, at=end)
    mrr_start, _ = _mrr_and_active(organization, start)
    mrr = sum(m for m, _ in balances.values())
    UsageMonthlySnapshot.objects.filter(organization=organization, month=month).delete()
    snapshot = UsageMonthlySnapshot.objects.create(
        organization=organization, month=month, currency=CURRENCY, definition_version=DEFINITION_VERSION,
        mrr_at_start=mrr_start, mrr=mrr, arr=12 * mrr, active_customers=sum(1 for m, _ in balances.values() if m > 0),
        movements=movements_between(organization=organization, start=start, end=end, currency=CURRENCY),
        computed_at=now)
    # Cohorts: customers by the local month they first paid in; their size and MRR at the end of that
    # month are the base of logo and net revenue retention.
    zone = local_day_bounds(organization.timezone, month)[0].tzinfo
    cohorts = defaultdict(lambda: {"customers": 0, "active": 0, "mrr": 0, "accounts": []})
    for account_id, (account_mrr, first_paid_at) in balances.items():
        if first_paid_at is None:
            continue
        cohort = cohorts[month_start(first_paid_at.astimezone(zone).date())]
        cohort["customers"] += 1
        cohort["active"] += account_mrr > 0
        cohort["mrr"] += account_mrr
        cohort["accounts"].append(account_id)
    rows = []
    for cohort_month, cohort in sorted(cohorts.items()):
        cohort_end = local_day_bounds(organization.timezone, next_month(cohort_month))[0]
        first_month = balances_at(organization=organization, at=cohort_end) if cohort_month != month else balances
        starting = sum(first_month.get(a, (0, None))[0] for a in cohort["accounts"])
        rows.append(UsageCohortRow(organization=organization, month=month, cohort_month=cohort_month,
                                   age_months=months_between(cohort_month, month), customers=cohort["customers"],
                                   active_customers=cohort["active"], starting_mrr=starting, mrr=cohort["mrr"],
                                   definition_version=DEFINITION_VERSION, computed_at=now))
    UsageCohortRow.objects.filter(organization=organization, month=month).delete()
    UsageCohortRow.objects.bulk_create(rows)
    return snapshot
