"""Invoices: generating them for subscription periods (in bulk, for the sweep), voiding them.

Numbers are gapless per organization: a batch locks its organizations' InvoiceNumberSequence rows,
then re-checks which periods still lack an invoice, and only then takes a block of numbers, all in
the batch's transaction. A rolled-back batch gives its numbers back; a concurrent batch waits on the
lock and then finds the invoices already there.
"""

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import F

from cobrador.catalog.services import coupon_applies_to, coupon_discount
from cobrador.core import clock
from cobrador.core.errors import Conflict
from cobrador.customers.credits import balances_for, consume_credit
from cobrador.customers.models import BillingAccount
from cobrador.events.services import EventDraft, record_event, record_events
from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence
from cobrador.organizations.models import Organization
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.periods import periods_between

# Invoices only need the account's id and public id: skip loading (and decoding) the rest.
_ACCOUNT_FIELDS_NOT_NEEDED = [f"account__{field.name}" for field in BillingAccount._meta.concrete_fields
                              if field.name not in ("id", "public_id", "organization")]

# Subscriptions that are billed for their current period (paused, canceled, expired are not).
BILLABLE_STATUSES = ("trialing", "active", "past_due")


def _id(obj) -> str | None:
    return obj.public_id if obj is not None else None


def line_data(line: InvoiceLine) -> dict:
    return {
        "description": line.description,
        "plan": _id(line.plan),
        "quantity": line.quantity,
        "unit_amount": line.unit_amount,
        "amount": line.amount,
        "period_start": line.period_start,
        "period_end": line.period_end,
    }


def invoice_data(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> dict:
    """The invoice as the API returns it (and as events carry it)."""
    if lines is None:
        lines = list(invoice.lines.all())
    return {
        "id": invoice.public_id,
        "object": "invoice",
        "number": invoice.number,
        "account": invoice.account.public_id,
        "subscription": _id(invoice.subscription),
        "status": invoice.status,
        "currency": invoice.currency,
        "period_start": invoice.period_start,
        "period_end": invoice.period_end,
        "subtotal": invoice.subtotal,
        "discount": invoice.discount,
        "credit_applied": invoice.credit_applied,
        "total": invoice.total,
        "amount_paid": invoice.amount_paid,
        "amount_due": invoice.amount_due,
        "coupon": _id(invoice.coupon),
        "due_date": invoice.due_date,
        "created_at": invoice.created_at,
        "paid_at": invoice.paid_at,
        "voided_at": invoice.voided_at,
        "lines": [line_data(line) for line in lines],
    }


def void_invoice(*, invoice: Invoice) -> Invoice:
    """Only a draft or open invoice can be voided. Its number stays used; credits and coupon periods
    it consumed are not given back."""
    if invoice.status not in ("draft", "open"):
        raise Conflict(f"a {invoice.status} invoice cannot be voided", field="status")
    invoice.status = "void"
    invoice.voided_at = clock.now()
    invoice.save(update_fields=["status", "voided_at"])
    record_event(organization=invoice.organization, type="invoice.voided", data=invoice_data(invoice))
    return invoice


# --- generation --------------------------------------------------------------------------------


def coupon_in_force(subscription: Subscription, periods_used: int) -> bool:
    """Whether the subscription's coupon still discounts a period, by its duration."""
    coupon = subscription.coupon
    if coupon is None:
        return False
    if coupon.duration == "forever":
        return True
    if coupon.duration == "once":
        return periods_used < 1
    return periods_used < (coupon.duration_in_periods or 0)


def due_date_for(period_start: datetime, as_of: datetime) -> date:
    """Due INVOICE_DUE_DAYS after the period starts; an invoice issued late is never due before its issue day."""
    return max(period_start.date(), as_of.date()) + timedelta(days=settings.INVOICE_DUE_DAYS)


def periods_to_bill(subscription: Subscription, invoiced_starts: set) -> list[tuple[datetime, datetime]]:
    """The current period, preceded by any periods the renewal sweep advanced past before they were
    invoiced (billed at the current plan), minus periods that already have an invoice."""
    start, end = subscription.current_period_start, subscription.current_period_end
    periods = []
    if subscription.uninvoiced_since is not None and subscription.status != "trialing":
        missed = periods_between(subscription.uninvoiced_since, start, months=subscription.plan.months_per_period,
                                 anchor_day=subscription.billing_anchor_day)
        periods = [(s, min(e, start)) for s, e in missed]
    periods.append((start, end))
    return [p for p in periods if p[0] not in invoiced_starts]


@dataclass
class _Draft:
    subscription: Subscription
    invoice: Invoice
    line: InvoiceLine


def _draft(subscription: Subscription, period: tuple[datetime, datetime], *, periods_used: int, now: datetime,
           as_of: datetime) -> _Draft:
    plan, quantity = subscription.plan, subscription.quantity
    trial = subscription.status == "trialing"
    unit_amount = 0 if trial else plan.amount
    subtotal = unit_amount * quantity
    discount, coupon = 0, None
    if subtotal > 0 and coupon_in_force(subscription, periods_used) and coupon_applies_to(subscription.coupon, plan):
        discount = coupon_discount(subscription.coupon, subtotal)
        coupon = subscription.coupon
    invoice = Invoice(
        organization_id=subscription.organization_id, account=subscription.account, subscription=subscription,
        currency=plan.currency, period_start=period[0], period_end=period[1], subtotal=subtotal,
        discount=discount, credit_applied=0, total=subtotal - discount, amount_due=subtotal - discount,
        coupon=coupon, due_date=due_date_for(period[0], as_of), created_at=now)
    description = f"{'Trial of ' if trial else ''}{plan.name} × {quantity}"
    line = InvoiceLine(invoice=invoice, description=description[:300], plan=plan, quantity=quantity,
                       unit_amount=unit_amount, amount=subtotal, period_start=period[0], period_end=period[1])
    return _Draft(subscription, invoice, line)


def _settle(invoice: Invoice, credit: int, now: datetime) -> None:
    invoice.credit_applied = credit
    invoice.total = invoice.subtotal - invoice.discount - credit
    invoice.amount_due = invoice.total
    invoice.status = "open" if invoice.total > 0 else "paid"
    invoice.paid_at = None if invoice.total > 0 else now


def _lock_sequences(organization_ids: list[int]) -> dict[int, InvoiceNumberSequence]:
    """Lock the organizations' number sequences, in id order (so batches never deadlock)."""
    locked = {seq.organization_id: seq for seq in InvoiceNumberSequence.objects.select_for_update()
              .filter(organization_id__in=organization_ids).order_by("organization_id")}
    missing = [org_id for org_id in organization_ids if org_id not in locked]
    if missing:
        InvoiceNumberSequence.objects.bulk_create([InvoiceNumberSequence(organization_id=org_id) for org_id in missing],
                                                  ignore_conflicts=True)
        locked.update({seq.organization_id: seq for seq in InvoiceNumberSequence.objects.select_for_update()
                       .filter(organization_id__in=missing).order_by("organization_id")})
    return locked


def generate_invoices(*, subscription_ids, as_of: datetime) -> dict[str, int]:
    """Invoice the due periods of these subscriptions in the caller's transaction, with a fixed
    number of queries per call (plus one ledger update per account that has credit). Returns tallies."""
    now = clock.now()
    subscriptions = list(
        Subscription.objects.filter(pk__in=subscription_ids, status__in=BILLABLE_STATUSES,
                                    current_period_start__lte=as_of)
        .select_related("account", "plan", "coupon").defer(*_ACCOUNT_FIELDS_NOT_NEEDED)
        .prefetch_related("coupon__plans").order_by("pk"))
    if not subscriptions:
        return {}
    organizations = Organization.objects.in_bulk({s.organization_id for s in subscriptions})
    sequences = _lock_sequences(sorted({s.organization_id for s in subscriptions}))

    # Under the lock: which of the periods we might bill are already invoiced (by a concurrent run).
    earliest = min(s.uninvoiced_since or s.current_period_start for s in subscriptions)
    invoiced = defaultdict(set)
    for subscription_id, period_start in Invoice.objects.filter(
            subscription_id__in=[s.pk for s in subscriptions], period_start__gte=earliest).values_list(
            "subscription_id", "period_start"):
        invoiced[subscription_id].add(period_start)

    drafts: list[_Draft] = []
    coupon_periods: dict[int, int] = {}
    caught_up: list[int] = []
    for subscription in subscriptions:
        used = subscription.coupon_periods_used
        for period in periods_to_bill(subscription, invoiced[subscription.pk]):
            draft = _draft(subscription, period, periods_used=used, now=now, as_of=as_of)
            used += draft.invoice.coupon_id is not None
            drafts.append(draft)
        if used != subscription.coupon_periods_used:
            coupon_periods[subscription.pk] = used - subscription.coupon_periods_used
        if subscription.uninvoiced_since is not None:
            caught_up.append(subscription.pk)
    if not drafts:
        return {}

    # Credits: only accounts with a balance are touched; planned here, consumed after insert.
    by_currency = defaultdict(set)
    for draft in drafts:
        if draft.invoice.total > 0:
            by_currency[draft.invoice.currency].add(draft.invoice.account_id)
    balances = {(currency, account_id): balance for currency, account_ids in by_currency.items()
                for account_id, balance in balances_for(list(account_ids), currency, as_of).items()}
    for draft in drafts:
        invoice = draft.invoice
        key = (invoice.currency, invoice.account_id)
        credit = min(balances.get(key, 0), invoice.total)
        if credit:
            balances[key] -= credit
        _settle(invoice, credit, now)

    for draft in drafts:
        sequence = sequences[draft.invoice.organization_id]
        sequence.last_number += 1
        draft.invoice.number = sequence.last_number
    InvoiceNumberSequence.objects.bulk_update(list(sequences.values()), ["last_number"])
    Invoice.objects.bulk_create([d.invoice for d in drafts])
    for draft in drafts:
        draft.line.invoice = draft.invoice
    InvoiceLine.objects.bulk_create([d.line for d in drafts])

    for draft in drafts:
        invoice = draft.invoice
        if invoice.credit_applied:
            applied = consume_credit(account_id=invoice.account_id, currency=invoice.currency,
                                     up_to=invoice.credit_applied, invoice=invoice, as_of=as_of)
            if applied != invoice.credit_applied:  # the ledger moved since balances_for read it
                _settle(invoice, applied, now)
                invoice.save(update_fields=["credit_applied", "total", "amount_due", "status", "paid_at"])

    increments = defaultdict(list)
    for subscription_id, n in coupon_periods.items():
        increments[n].append(subscription_id)
    for n, ids in increments.items():
        Subscription.objects.filter(pk__in=ids).update(coupon_periods_used=F("coupon_periods_used") + n)
    if caught_up:
        Subscription.objects.filter(pk__in=caught_up).update(uninvoiced_since=None)

    events = []
    for draft in drafts:
        data = invoice_data(draft.invoice, [draft.line])
        organization = organizations[draft.invoice.organization_id]
        events.append(EventDraft(organization, "invoice.created", data))
        if draft.invoice.status == "paid":
            events.append(EventDraft(organization, "invoice.paid", data))
    record_events(events)
    paid = sum(d.invoice.status == "paid" for d in drafts)
    return {"invoices_created": len(drafts), "paid_at_once": paid,
            "missed_periods_billed": len(drafts) - len({d.subscription.pk for d in drafts})}
