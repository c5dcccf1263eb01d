"""Computing usage snapshots: one organization's local day or month, from the MRR ledger and the
billing tables. Pure reads plus one replace per row set; the sweeps in `usage/sweeps.py` call these
inside a transaction that holds the organization's row lock, so two workers never interleave."""

from collections import defaultdict
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Count, Sum

from cobrador.core import clock
from cobrador.dunning.models import DelinquentAccount, RecoveryRecord
from cobrador.invoicing.models import Invoice
from cobrador.nfe.models import ServiceInvoice
from cobrador.payments.models import Payment
from cobrador.proposals.models import Proposal
from cobrador.subscriptions.models import Subscription
from cobrador.usage.ledger import local_date, local_day_bounds, movements_between, walk_days
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


def billing_by_day(*, organization, first: date, last: date) -> dict[date, dict]:
    """Invoices issued, payments received (by method), failed payments and what dunning recovered, per
    local day in [first, last], by the day each fact happened: four grouped reads for the whole span."""
    start = local_day_bounds(organization.timezone, first)[0]
    end = local_day_bounds(organization.timezone, last)[1]

    def day_of(column: str):
        return local_date(column, timezone=organization.timezone, first=first, last=last)

    days = defaultdict(lambda: {"invoices_issued": 0, "invoices_issued_amount": 0, "payments_by_method": {},
                                "payments_failed": 0, "recovered_by_dunning": 0, "delinquent_accounts": 0,
                                "suspended_accounts": 0, "proposals_sent": 0, "proposals_accepted": 0,
                                "nfse_issued": 0})
    for row in (Invoice.objects.filter(organization=organization, created_at__gte=start, created_at__lt=end)
                .exclude(status="draft").annotate(local_day=day_of("created_at"))
                .values("local_day").annotate(count=Count("pk"), amount=Sum("total")).order_by()):
        days[row["local_day"]].update(invoices_issued=row["count"], invoices_issued_amount=row["amount"] or 0)
    for row in (Payment.objects.filter(organization=organization, paid_at__gte=start, paid_at__lt=end,
                                       status__in=("succeeded", "refunded"))
                .annotate(local_day=day_of("paid_at")).values("local_day", "method")
                .annotate(count=Count("pk"), amount=Sum("amount_paid")).order_by("local_day", "method")):
        days[row["local_day"]]["payments_by_method"][row["method"]] = {"count": row["count"],
                                                                       "amount": row["amount"] or 0}
    for row in (Payment.objects.filter(organization=organization, failed_at__gte=start, failed_at__lt=end)
                .annotate(local_day=day_of("failed_at")).values("local_day")
                .annotate(count=Count("pk")).order_by()):
        days[row["local_day"]]["payments_failed"] = row["count"]
    for row in (RecoveryRecord.objects.filter(organization=organization, outcome="succeeded",
                                              attempted_at__gte=start, attempted_at__lt=end)
                .annotate(local_day=day_of("attempted_at")).values("local_day")
                .annotate(amount=Sum("amount")).order_by()):
        days[row["local_day"]]["recovered_by_dunning"] = row["amount"] or 0
    for row in (Proposal.objects.filter(organization=organization, sent_at__gte=start, sent_at__lt=end)
                .annotate(local_day=day_of("sent_at")).values("local_day").annotate(count=Count("pk")).order_by()):
        days[row["local_day"]]["proposals_sent"] = row["count"]
    for row in (Proposal.objects.filter(organization=organization, accepted_at__gte=start, accepted_at__lt=end)
                .annotate(local_day=day_of("accepted_at")).values("local_day").annotate(count=Count("pk"))
                .order_by()):
        days[row["local_day"]]["proposals_accepted"] = row["count"]
    for row in (ServiceInvoice.objects.filter(organization=organization, issued_at__gte=start, issued_at__lt=end)
                .annotate(local_day=day_of("issued_at")).values("local_day").annotate(count=Count("pk"))
                .order_by()):
        days[row["local_day"]]["nfse_issued"] = row["count"]
    _delinquency_by_day(organization, first, last, days)
    return days


def _delinquency_by_day(organization, first: date, last: date, days) -> None:
    """Cases open and suspended at the end of each day, by a sweep over the cases' own timestamps: a case
    counts on the local days from the one it started in up to (not including) the one it stopped in."""
    zone = ZoneInfo(organization.timezone)
    end = local_day_bounds(organization.timezone, last)[1]
    span = (last - first).days + 1
    changes = {"delinquent_accounts": [0] * (span + 1), "suspended_accounts": [0] * (span + 1)}

    def mark(name, started, stopped):
        if started is None or started >= end:
            return
        begin = max((started.astimezone(zone).date() - first).days, 0)
        stop = span if stopped is None else min((stopped.astimezone(zone).date() - first).days, span)
        if stop > begin:
            changes[name][begin] += 1
            changes[name][stop] -= 1

    for opened_at, suspended_at, closed_at in (
            DelinquentAccount.objects.filter(organization=organization, opened_at__lt=end)
            .exclude(closed_at__lt=local_day_bounds(organization.timezone, first)[0])
            .values_list("opened_at", "suspended_at", "closed_at").iterator(chunk_size=5000)):
        mark("delinquent_accounts", opened_at, min(filter(None, (suspended_at, closed_at)), default=None))
        mark("suspended_accounts", suspended_at, closed_at)
    for name, diff in changes.items():
        running = 0
        for offset in range(span):
            running += diff[offset]
            if running:
                days[first + timedelta(days=offset)][name] = running


def subscriptions_by_status(organization) -> dict:
    """{status: {plan public id: count}} of the organization's subscriptions now."""
    table: dict[str, dict[str, int]] = defaultdict(dict)
    for status, plan, count in (Subscription.objects.filter(organization=organization)
                                .values_list("status", "plan__public_id").annotate(count=Count("pk"))
                                .order_by("status", "plan__public_id")):
        table[status][plan] = count
    return dict(table)


def write_daily_snapshots(*, organization, days: list[date]) -> list[UsageDailySnapshot]:
    """Compute and replace these consecutive days' rows (a rerun writes the same values again). The
    balance at the first day's start is read once; the days after walk the ledger forward, and the
    billing figures are grouped by day over the whole span, so a long catch-up costs a few reads, not
    a few per day. A movement recorded later with a moment before the day before the first (never by the
    live ledger, which dates a change no earlier than the sweep that made it, bar a canceled period's end)
    is not seen by these rows: `cobrador usage rebuild` recomputes them all."""
    if not days:
        return []
    now = clock.now()
    days = sorted(days)
    # The balance the first day starts from: the day before's row when there is one (the rows chain, and a
    # rerun reads one day of ledger, not its whole history), else the ledger up to the first day.
    previous = (UsageDailySnapshot.objects.filter(organization=organization, day=days[0] - timedelta(days=1),
                                                  definition_version=DEFINITION_VERSION)
                .values_list("mrr", "active_customers").first())
    if previous is not None:
        mrr, active = previous
    else:
        balances = balances_at(organization=organization, at=local_day_bounds(organization.timezone, days[0])[0])
        mrr = sum(m for m, _ in balances.values())
        active = sum(1 for m, _ in balances.values() if m > 0)
    billing = billing_by_day(organization=organization, first=days[0], last=days[-1])
    # The subscriptions now stand for the day just ended only; a caught-up day cannot know its own.
    just_ended = local_day_bounds(organization.timezone, days[-1])[1] > now - timedelta(days=1)
    current = subscriptions_by_status(organization) if just_ended else {}
    rows = []
    for day, mrr_start, day_mrr, day_active, movements in walk_days(
            organization=organization, days=days, mrr=mrr, active=active, currency=CURRENCY):
        facts = billing.get(day) or billing[day]
        by_method = dict(sorted(facts["payments_by_method"].items()))
        rows.append(UsageDailySnapshot(
            organization=organization, day=day, computed_at=now, currency=CURRENCY,
            definition_version=DEFINITION_VERSION, mrr=day_mrr, arr=12 * day_mrr, mrr_at_start=mrr_start,
            active_customers=day_active, movements=movements, invoices_issued=facts["invoices_issued"],
            invoices_issued_amount=facts["invoices_issued_amount"],
            payments_received=sum(m["count"] for m in by_method.values()),
            payments_received_amount=sum(m["amount"] for m in by_method.values()), payments_by_method=by_method,
            payments_failed=facts["payments_failed"], recovered_by_dunning=facts["recovered_by_dunning"],
            delinquent_accounts=facts["delinquent_accounts"], suspended_accounts=facts["suspended_accounts"],
            proposals_sent=facts["proposals_sent"], proposals_accepted=facts["proposals_accepted"],
            nfse_issued=facts["nfse_issued"], subscriptions=current if day == days[-1] else {}))
    UsageDailySnapshot.objects.filter(organization=organization, day__in=days).delete()
    return UsageDailySnapshot.objects.bulk_create(rows, batch_size=500)


def month_start(day: date) -> date:
    return day.replace(day=1)


def next_month(month: date) -> date:
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


def months_between(first: date, last: date) -> int:
    return (last.year - first.year) * 12 + last.month - first.month


def _month_walk(organization, month: date) -> tuple[int, dict[int, int], dict[int, date], dict[date, int]]:
    """One ordered walk of the ledger up to the end of `month`: the MRR at the month's start, each
    customer's MRR at its end, each customer's cohort (the local month of their first `new`), and each
    cohort's MRR at the end of its own first month (sampled as the walk passes that month's end)."""
    zone = ZoneInfo(organization.timezone)
    start = local_day_bounds(organization.timezone, month)[0]
    end = local_day_bounds(organization.timezone, next_month(month))[0]
    balances: dict[int, int] = {}
    cohort_of: dict[int, date] = {}
    members: dict[date, list[int]] = defaultdict(list)
    starting: dict[date, int] = {}
    mrr_start = None
    open_month, open_end = None, None  # the month whose end the walk passes next

    def close_months_until(moment):
        nonlocal open_month, open_end, mrr_start
        while open_month is not None and open_end <= moment:
            starting[open_month] = sum(balances[a] for a in members.get(open_month, ()))
            if open_end == start:
                mrr_start = sum(balances.values())
            open_month = next_month(open_month)
            open_end = local_day_bounds(organization.timezone, next_month(open_month))[0]

    for account_id, mrr_after, kind, occurred_at in (
            MrrMovement.objects.filter(organization=organization, currency=CURRENCY, occurred_at__lt=end)
            .order_by("occurred_at", "pk").values_list("account_id", "mrr_after", "kind", "occurred_at")
            .iterator(chunk_size=5000)):
        if open_month is None:
            open_month = month_start(occurred_at.astimezone(zone).date())
            open_end = local_day_bounds(organization.timezone, next_month(open_month))[0]
            if open_month >= month:
                mrr_start = 0
        close_months_until(occurred_at)
        if mrr_start is None and occurred_at >= start:
            mrr_start = sum(balances.values())
        balances[account_id] = mrr_after
        if kind == "new" and account_id not in cohort_of:
            cohort_of[account_id] = month_start(occurred_at.astimezone(zone).date())
            members[cohort_of[account_id]].append(account_id)
    close_months_until(end)
    if mrr_start is None:
        mrr_start = sum(balances.values())
    return mrr_start, balances, cohort_of, starting


def write_monthly_snapshot(*, organization, month: date) -> UsageMonthlySnapshot:
    """The month's row and its cohort rows, replacing any earlier computation of the same month."""
    now = clock.now()
    start = local_day_bounds(organization.timezone, month)[0]
    end = local_day_bounds(organization.timezone, next_month(month))[0]
    mrr_start, balances, cohort_of, starting = _month_walk(organization, month)
    mrr = sum(balances.values())
    UsageMonthlySnapshot.objects.filter(organization=organization, month=month).delete()
    snapshot = UsageMonthlySnapshot.objects.create(
        organization=organization, month=month, currency=CURRENCY, definition_version=DEFINITION_VERSION,
        mrr_at_start=mrr_start, mrr=mrr, arr=12 * mrr, active_customers=sum(1 for m in balances.values() if m > 0),
        movements=movements_between(organization=organization, start=start, end=end, currency=CURRENCY),
        computed_at=now)
    # Cohorts: customers by the local month they first paid in; their size and MRR at the end of that
    # month are the base of logo and net revenue retention.
    cohorts = defaultdict(lambda: {"customers": 0, "active": 0, "mrr": 0})
    for account_id, cohort_month in cohort_of.items():
        cohort = cohorts[cohort_month]
        cohort["customers"] += 1
        cohort["active"] += balances[account_id] > 0
        cohort["mrr"] += balances[account_id]
    rows = [UsageCohortRow(organization=organization, month=month, cohort_month=cohort_month,
                           age_months=months_between(cohort_month, month), customers=cohort["customers"],
                           active_customers=cohort["active"], starting_mrr=starting.get(cohort_month, 0),
                           mrr=cohort["mrr"], definition_version=DEFINITION_VERSION, computed_at=now)
            for cohort_month, cohort in sorted(cohorts.items())]
    UsageCohortRow.objects.filter(organization=organization, month=month).delete()
    UsageCohortRow.objects.bulk_create(rows)
    return snapshot
