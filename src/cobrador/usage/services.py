"""The MRR ledger: recompute the MRR of the customers a change touched and write a movement for each
whose MRR moved. Runs inside the caller's transaction (the one that made the change); never commits.

Recomputing the customer's whole MRR from current state (rather than applying each event's delta) is
what keeps the ledger right for any change, including ones this module has never heard of (a
prorated plan change arrives as `subscription.updated` like any other)."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Prefetch

from cobrador.catalog.models import Coupon
from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects, update_rows
from cobrador.customers.models import BillingAccount
from cobrador.invoicing.models import Invoice
from cobrador.subscriptions.models import Subscription
from cobrador.usage.models import DEFINITION_VERSION, CustomerMrr, MrrMovement
from cobrador.usage.mrr import COUNTED_STATUSES, classify, subscription_mrr

SUBSCRIPTION_EVENTS = {"subscription.created", "subscription.updated", "subscription.renewed",
                       "subscription.paused", "subscription.resumed", "subscription.canceled",
                       "subscription.expired"}
ACCOUNT_EVENTS = {"billing_account.suspended", "billing_account.reactivated"}


def _moment(value) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if isinstance(value, str) else None


def effective_at(event) -> datetime:
    """When an event changed MRR: a canceled or expired subscription churns at its `ended_at` (the paid
    period's end, even if the sweep ran late), a renewal (a repeating coupon's end, a pending plan) at the
    new period's start; everything else (a converted trial included) at the event's time."""
    data = event.data
    if event.type in ("subscription.canceled", "subscription.expired"):
        return _moment(data.get("ended_at")) or event.created_at
    if event.type == "subscription.renewed":
        return _moment(data.get("current_period_start")) or event.created_at
    return event.created_at


@dataclass(frozen=True)
class Change:
    """Why and when a customer's MRR may have changed."""
    occurred_at: datetime
    cause_event: str = ""
    cause: str = ""


def customers_mrr(account_ids, *, suspended: set[int] | None = None) -> dict[int, dict[str, int]]:
    """The MRR of each account now, per currency: {account_id: {currency: mrr}} (accounts with none: {}).
    `suspended`: which of them are suspended, when the caller has read it already."""
    account_ids = list(account_ids)
    if suspended is None:
        suspended = set(BillingAccount.objects.filter(pk__in=account_ids, status="suspended")
                        .values_list("pk", flat=True))
    subscriptions = list(Subscription.objects.filter(account_id__in=account_ids, status__in=COUNTED_STATUSES)
                         .select_related("plan")
                         .prefetch_related(Prefetch("coupon", Coupon.objects.prefetch_related("plans"))))
    invoiced = {}
    with_coupon = [s for s in subscriptions if s.coupon_id is not None]
    if with_coupon:
        for subscription_id, period_start, coupon_id in Invoice.objects.filter(
                subscription_id__in=[s.pk for s in with_coupon],
                period_start__in={s.current_period_start for s in with_coupon}).exclude(status="void").values_list(
                "subscription_id", "period_start", "coupon_id"):
            invoiced[(subscription_id, period_start)] = coupon_id
    totals: dict[int, dict[str, int]] = {pk: defaultdict(int) for pk in account_ids}
    for s in subscriptions:
        key = (s.pk, s.current_period_start)
        totals[s.account_id][s.plan.currency] += subscription_mrr(
            s, current_period_invoiced=key in invoiced, current_invoice_coupon_id=invoiced.get(key),
            account_suspended=s.account_id in suspended)
    return totals


def _ensure_balance_rows(accounts: dict[int, int], now) -> None:
    """Make sure every (customer, currency) the change may touch has its balance row before it is locked.

    Two transactions giving a customer their first MRR at once would both find no row to lock and both
    insert one: on PostgreSQL the second insert failed on the unique constraint. Here each inserts the
    missing rows (at 0, never paid) with ON CONFLICT DO NOTHING: the second waits for the first's insert
    to commit and then inserts nothing, and both go on to lock the one row, in turn."""
    if not accounts:
        return
    wanted = set(Subscription.objects.filter(account_id__in=list(accounts), status__in=COUNTED_STATUSES)
                 .values_list("account_id", "plan__currency").distinct())
    if not wanted:
        return
    existing = set(CustomerMrr.objects.filter(account_id__in={a for a, _ in wanted}).values_list(
        "account_id", "currency"))
    missing = sorted(wanted - existing)
    if missing:
        CustomerMrr.objects.bulk_create(
            [CustomerMrr(organization_id=accounts[account_id], account_id=account_id, currency=currency, mrr=0,
                         updated_at=now) for account_id, currency in missing],
            ignore_conflicts=True)


def record_mrr_changes(*, changes: dict[int, Change]) -> list[MrrMovement]:
    """`changes`: {account_id: Change}. Writes one movement per (customer, currency) whose MRR moved,
    and their balances, with a few bulk statements. The balance rows are locked (in pk order) so two
    transactions changing one customer serialize instead of both moving from the same balance."""
    if not changes:
        return []
    now = clock.now()
    account_ids = sorted(changes)
    accounts = dict(BillingAccount.objects.filter(pk__in=account_ids).values_list("pk", "organization_id"))
    _ensure_balance_rows(accounts, now)
    balances = {(b.account_id, b.currency): b for b in CustomerMrr.objects.select_for_update().filter(
        account_id__in=account_ids).order_by("pk")}
    # Read under the balance locks: a transaction that changed this customer and held them has committed,
    # so its change is part of what is read (read committed) and of the balance it left.
    suspended = set(BillingAccount.objects.filter(pk__in=account_ids, status="suspended")
                    .values_list("pk", flat=True))
    current = customers_mrr(account_ids, suspended=suspended)
    movements, new_balances, moved = [], [], []
    for account_id in account_ids:
        if account_id not in accounts:
            continue
        change = changes[account_id]
        currencies = set(current[account_id]) | {c for (a, c) in balances if a == account_id}
        for currency in sorted(currencies):
            after = current[account_id].get(currency, 0)
            balance = balances.get((account_id, currency))
            before = balance.mrr if balance is not None else 0
            kind = classify(before, after, ever_paid=balance is not None and balance.first_paid_at is not None)
            if kind is None:
                continue
            # Never before the customer's last movement: the ledger stays ordered per customer.
            occurred_at = min(change.occurred_at, now)
            if balance is not None and balance.last_movement_at and occurred_at < balance.last_movement_at:
                occurred_at = balance.last_movement_at
            movements.append(build(
                MrrMovement, organization_id=accounts[account_id], account_id=account_id, currency=currency,
                kind=kind, churn_type=("involuntary" if account_id in suspended else "voluntary")
                if kind == "churn" else "", mrr_before=before, mrr_after=after, delta=after - before,
                occurred_at=occurred_at, cause_event=change.cause_event, cause=change.cause,
                definition_version=DEFINITION_VERSION, created_at=now))
            if balance is None:
                new_balances.append(build(CustomerMrr, organization_id=accounts[account_id], account_id=account_id,
                                          currency=currency, mrr=after, first_paid_at=occurred_at,
                                          last_movement_at=occurred_at, updated_at=now))
            else:
                balance.mrr, balance.last_movement_at, balance.updated_at = after, occurred_at, now
                balance.first_paid_at = balance.first_paid_at or (occurred_at if after > 0 else None)
                moved.append(balance)
    insert_objects(new_balances)
    update_rows(moved, ["mrr", "first_paid_at", "last_movement_at", "updated_at"])
    insert_objects(movements)
    return movements
