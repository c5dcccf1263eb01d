"""Rebuilding an organization's MRR ledger from its subscriptions' history (`cobrador usage rebuild`).

The history is the organization's events: each `subscription.*` event carries the whole subscription as
it was right after the change, and `billing_account.suspended` / `reactivated` the account's status.
Replaying them in order, each customer's MRR is recomputed after every event with the same definitions
the live ledger uses (`usage/mrr.py`, at the same moments: `effective_at`), and a movement is written
whenever it moved. Plans and coupons are read as they are now (their prices never change once used);
whether a repeating coupon applied to a period is read from that period's invoice, as live.

What cannot be rebuilt is said, never guessed silently:
* a subscription whose `subscription.created` event is gone (pruned by retention, or from before the
  ledger existed): its history starts at its oldest surviving event; with no event at all, it enters at
  its `started_at` with its state now (`placed_at_start`);
* a customer whose replayed MRR differs from what their subscriptions give now: a correcting movement at
  the rebuild's time brings the ledger to the present (`corrected`).

The rebuilt ledger replaces the old one (rows marked `rebuilt`), the balances are rewritten, and the
daily and monthly snapshots (with cohorts) are recomputed from it, all in one transaction holding the
organization's row lock and every balance row of it, so neither the live sink nor the snapshot jobs
interleave.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cobrador.catalog.models import Coupon, Plan
from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects
from cobrador.customers.models import BillingAccount
from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice
from cobrador.organizations.models import Organization
from cobrador.subscriptions.models import Subscription
from cobrador.usage.models import (
    DEFINITION_VERSION,
    CustomerMrr,
    MrrMovement,
    UsageCohortRow,
    UsageDailySnapshot,
    UsageMonthlySnapshot,
)
from cobrador.usage.mrr import classify, subscription_mrr
from cobrador.usage.services import ACCOUNT_EVENTS, SUBSCRIPTION_EVENTS, customers_mrr, effective_at
from cobrador.usage.snapshots import next_month, write_daily_snapshots, write_monthly_snapshot


@dataclass
class RebuildReport:
    organization: str
    events_replayed: int = 0
    movements_before: int = 0
    movements_after: int = 0
    customers: int = 0
    history_starts_late: list[tuple[str, datetime]] = field(default_factory=list)  # (sub_, first event)
    placed_at_start: list[str] = field(default_factory=list)  # sub_ with no event at all
    corrected: list[tuple[str, int, int]] = field(default_factory=list)  # (ba_, replayed, now)
    differing_customers: list[str] = field(default_factory=list)  # final MRR differs from the old ledger
    days: int = 0
    months: int = 0
    written: bool = False


@dataclass
class _Customer:
    public_id: str
    suspended: bool = False
    mrr: dict = field(default_factory=dict)  # {currency: mrr}
    ever_paid: bool = False
    last_at: datetime | None = None
    first_paid_at: datetime | None = None


def _moment(value):
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else value


class _Replay:
    def __init__(self, organization):
        self.organization = organization
        self.plans = {p.public_id: p for p in Plan.objects.filter(organization=organization)}
        self.coupons = {c.public_id: c for c in Coupon.objects.filter(organization=organization)
                        .prefetch_related("plans")}
        self.subscription_pks = dict(Subscription.objects.filter(organization=organization)
                                     .values_list("public_id", "pk"))
        self.accounts = {a.public_id: a for a in BillingAccount.objects.filter(organization=organization)}
        self.invoiced = {(s, p): c for s, p, c in Invoice.objects.filter(
            organization=organization, subscription__isnull=False, period_start__isnull=False).exclude(
            status="void").values_list("subscription_id", "period_start", "coupon_id")}
        self.states: dict[str, dict] = {}  # sub_ -> its latest payload
        self.by_account: dict[str, set[str]] = defaultdict(set)
        self.customers: dict[str, _Customer] = {}
        self.movements: list = []

    def customer(self, public_id: str) -> _Customer:
        if public_id not in self.customers:
            self.customers[public_id] = _Customer(public_id)
        return self.customers[public_id]

    def _subscription_mrr(self, data: dict, suspended: bool) -> tuple[str, int] | None:
        plan = self.plans.get(data.get("plan"))
        if plan is None:
            return None
        subscription = Subscription(plan=plan, quantity=data.get("quantity") or 1, status=data.get("status"),
                                    coupon=self.coupons.get(data.get("coupon")),
                                    coupon_periods_used=data.get("coupon_periods_used") or 0)
        pk = self.subscription_pks.get(data["id"])
        key = (pk, _moment(data.get("current_period_start")))
        return plan.currency, subscription_mrr(subscription, current_period_invoiced=key in self.invoiced,
                                               current_invoice_coupon_id=self.invoiced.get(key),
                                               account_suspended=suspended)

    def settle(self, account_public_id: str, at: datetime, *, cause: str, cause_event: str, now: datetime) -> None:
        """Recompute one customer's MRR from the replayed states and write the movements it made."""
        account = self.accounts.get(account_public_id)
        if account is None:
            return
        customer = self.customer(account_public_id)
        totals = defaultdict(int)
        for ref in self.by_account[account_public_id]:
            found = self._subscription_mrr(self.states[ref], customer.suspended)
            if found is not None:
                totals[found[0]] += found[1]
        self.move(account, customer, dict(totals), at, cause=cause, cause_event=cause_event, now=now)

    def move(self, account, customer: _Customer, totals: dict, at: datetime, *, cause: str, cause_event: str,
             now: datetime) -> None:
        at = min(at, now)
        if customer.last_at is not None and at < customer.last_at:
            at = customer.last_at
        for currency in sorted(set(totals) | set(customer.mrr)):
            before, after = customer.mrr.get(currency, 0), totals.get(currency, 0)
            kind = classify(before, after, ever_paid=customer.ever_paid)
            if kind is None:
                continue
            self.movements.append(build(
                MrrMovement, organization_id=self.organization.pk, account_id=account.pk, currency=currency,
                kind=kind, churn_type=("involuntary" if customer.suspended else "voluntary") if kind == "churn" else "",
                mrr_before=before, mrr_after=after, delta=after - before, occurred_at=at, cause_event=cause_event,
                cause=cause, rebuilt=True, definition_version=DEFINITION_VERSION, created_at=now))
            customer.mrr[currency] = after
            customer.last_at = at
            if after > 0 and not customer.ever_paid:
                customer.ever_paid, customer.first_paid_at = True, at


def replay(organization) -> tuple[_Replay, RebuildReport]:
    now = clock.now()
    report = RebuildReport(organization=organization.public_id)
    run = _Replay(organization)
    events = (Event.objects.filter(organization=organization, type__in=SUBSCRIPTION_EVENTS | ACCOUNT_EVENTS)
              .order_by("created_at", "pk").only("public_id", "type", "data", "created_at"))
    first_seen: dict[str, tuple[str, datetime]] = {}
    seen_at: dict[str, datetime] = {}
    # Events are replayed in the order of the moment they changed MRR (a cancellation's churn at its end).
    ordered = sorted(((effective_at(e), i, e) for i, e in enumerate(events.iterator(chunk_size=2000))),
                     key=lambda item: (item[0], item[1]))
    for at, _, event in ordered:
        data = event.data
        ref = data.get("id")
        if not isinstance(ref, str):
            continue
        report.events_replayed += 1
        if event.type in SUBSCRIPTION_EVENTS:
            account_ref = data.get("account")
            if not isinstance(account_ref, str):
                continue
            first_seen.setdefault(ref, (event.type, event.created_at))
            # The latest recorded state stands, whatever order the moments put the events in.
            if seen_at.get(ref, event.created_at) <= event.created_at:
                run.states[ref], seen_at[ref] = data, event.created_at
            run.by_account[account_ref].add(ref)
        else:
            account_ref = ref
            run.customer(account_ref).suspended = data.get("status") == "suspended"
        run.settle(account_ref, at, cause=ref, cause_event=event.public_id, now=now)

    for ref, (first_type, first_at) in sorted(first_seen.items()):
        if first_type != "subscription.created":
            report.history_starts_late.append((ref, first_at))
    # Subscriptions with no event at all: they enter at their start with their state now.
    unseen = (Subscription.objects.filter(organization=organization).exclude(public_id__in=list(first_seen))
              .select_related("account", "plan").order_by("started_at", "pk"))
    for subscription in unseen:
        report.placed_at_start.append(subscription.public_id)
        run.states[subscription.public_id] = {
            "id": subscription.public_id, "plan": subscription.plan.public_id, "quantity": subscription.quantity,
            "status": subscription.status, "coupon": subscription.coupon.public_id if subscription.coupon else None,
            "coupon_periods_used": subscription.coupon_periods_used,
            "current_period_start": subscription.current_period_start}
        run.by_account[subscription.account.public_id].add(subscription.public_id)
        run.settle(subscription.account.public_id, subscription.started_at, cause=subscription.public_id,
                   cause_event="", now=now)

    # The present is the check: where the replay ends elsewhere than the subscriptions now, correct it.
    present = customers_mrr(a.pk for a in run.accounts.values())
    for public_id, account in sorted(run.accounts.items()):
        customer = run.customer(public_id)
        customer.suspended = account.status == "suspended"
        now_mrr = {c: m for c, m in present[account.pk].items() if m}
        replayed = {c: m for c, m in customer.mrr.items() if m}
        if now_mrr != replayed:
            report.corrected.append((public_id, sum(replayed.values()), sum(now_mrr.values())))
            run.move(account, customer, now_mrr, now, cause=public_id, cause_event="", now=now)
    report.customers = sum(1 for c in run.customers.values() if c.ever_paid)
    report.movements_after = len(run.movements)
    report.movements_before = MrrMovement.objects.filter(organization=organization).count()
    old = defaultdict(int)
    for account_id, currency, mrr in (CustomerMrr.objects.filter(organization=organization)
                                      .values_list("account_id", "currency", "mrr")):
        old[(account_id, currency)] = mrr
    by_pk = {a.pk: a.public_id for a in run.accounts.values()}
    new = {(run.accounts[p].pk, c): m for p, cust in run.customers.items() if p in run.accounts
           for c, m in cust.mrr.items()}
    report.differing_customers = sorted({by_pk[a] for (a, c) in set(old) | set(new)
                                         if old.get((a, c), 0) != new.get((a, c), 0) and a in by_pk})
    return run, report


def rebuild_ledger(*, organization, write: bool = True) -> RebuildReport:
    """Replay, then (unless `write` is false) replace the ledger, the balances and the snapshots. Runs
    in the caller's transaction, which it locks the organization's row and balance rows in."""
    organization = Organization.objects.select_for_update().get(pk=organization.pk)
    list(CustomerMrr.objects.select_for_update().filter(organization=organization).order_by("pk")
         .values_list("pk", flat=True))
    run, report = replay(organization)
    if not write:
        return report
    now = clock.now()
    MrrMovement.objects.filter(organization=organization).delete()
    CustomerMrr.objects.filter(organization=organization).delete()
    insert_objects(run.movements)
    CustomerMrr.objects.bulk_create([
        CustomerMrr(organization=organization, account_id=run.accounts[public_id].pk, currency=currency, mrr=mrr,
                    first_paid_at=customer.first_paid_at, last_movement_at=customer.last_at, updated_at=now)
        for public_id, customer in run.customers.items() if public_id in run.accounts
        for currency, mrr in customer.mrr.items()])
    # The snapshots computed from the old ledger: recomputed for the days and months they covered.
    days = sorted(UsageDailySnapshot.objects.filter(organization=organization).values_list("day", flat=True))
    months = sorted(UsageMonthlySnapshot.objects.filter(organization=organization).values_list("month", flat=True))
    if days:
        span = [days[0] + timedelta(days=i) for i in range((days[-1] - days[0]).days + 1)]
        write_daily_snapshots(organization=organization, days=span)
        report.days = len(span)
    if months:
        UsageCohortRow.objects.filter(organization=organization).delete()
        month = months[0]
        while month <= months[-1]:
            write_monthly_snapshot(organization=organization, month=month)
            report.months += 1
            month = next_month(month)
    report.written = True
    return report
