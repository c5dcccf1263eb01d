"""Invoices: generating them for subscription periods (in bulk, for the sweep), voiding them.

Numbers are gapless per organization: a batch locks its organizations' InvoiceNumberSequence rows,
then re-checks which periods still lack an invoice, and only then takes a block of numbers, all in
the batch's transaction. A rolled-back batch gives its numbers back; a concurrent batch waits on the
lock and then finds the invoices already there.
"""

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.conf import settings
from django.db.models import F

from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.services import coupon_applies_to, coupon_discount
from cobrador.core import clock
from cobrador.core.bulk import insert_rows
from cobrador.core.errors import NotFound, ValidationFailed
from cobrador.core.ids import new_public_id
from cobrador.customers.credits import balances_for, consume_credit, grant_credit
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.events.services import EventDraft, record_event, record_events
from cobrador.invoicing import proration
from cobrador.invoicing.errors import InvoiceNotVoidable
from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence
from cobrador.organizations.models import Organization
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.periods import periods_between
from cobrador.subscriptions.services import update_subscription

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
        "service_code": line.service_code or None,
    }


def invoice_data(invoice: Invoice, lines: list[InvoiceLine] | None = None) -> dict:
    """The invoice as the API returns it (and as events carry it)."""
    if lines is None:
        lines = list(invoice.lines.all())
    return _invoice_dict(invoice, account=invoice.account.public_id, subscription=_id(invoice.subscription),
                         coupon=_id(invoice.coupon), lines=[line_data(line) for line in lines],
                         payment_method=_id(invoice.payment_method) if invoice.payment_method_id else None)


# Fields other apps add to the invoice object the API returns (nfe: `service_invoice`), registered in
# their AppConfig.ready: invoicing never imports them. Not part of event payloads.
_extensions: list[Callable[[Invoice], dict]] = []


def register_invoice_extension(extension: Callable[[Invoice], dict]) -> None:
    if extension not in _extensions:
        _extensions.append(extension)


def invoice_object(invoice: Invoice) -> dict:
    """The invoice as the API returns it: invoice_data plus the registered apps' fields."""
    data = invoice_data(invoice)
    for extension in _extensions:
        data.update(extension(invoice))
    return data


def _invoice_dict(invoice, *, account: str, subscription: str | None, coupon: str | None, lines: list[dict],
                  payment_method: str | None) -> dict:
    # `invoice` is an Invoice or a _NewInvoice (the sweep's rows, before any model instance exists).
    return {
        "id": invoice.public_id,
        "object": "invoice",
        "number": invoice.number,
        "account": account,
        "subscription": subscription,
        "kind": invoice.kind,
        "collection_method": invoice.collection_method,
        "payment_method": payment_method,
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
        "coupon": coupon,
        "due_date": invoice.due_date,
        "created_at": invoice.created_at,
        "paid_at": invoice.paid_at,
        "voided_at": invoice.voided_at,
        "lines": lines,
    }


def void_invoice(*, invoice: Invoice) -> Invoice:
    """Only a draft or open invoice can be voided. Its number stays used; credits and coupon periods
    it consumed are not given back."""
    if invoice.status not in ("draft", "open"):
        raise InvoiceNotVoidable(f"a {invoice.status} invoice cannot be voided", field="status")
    invoice.status = "void"
    invoice.voided_at = clock.now()
    invoice.save(update_fields=["status", "voided_at"])
    record_event(organization=invoice.organization, type="invoice.voided", data=invoice_data(invoice))
    return invoice


# --- generation ---------------------------------------------------------------------------------


def coupon_in_force(coupon: Coupon | None, periods_used: int) -> bool:
    """Whether a subscription's coupon still discounts a period, by its duration."""
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


def periods_to_bill(subscription, months: int, invoiced_starts: set) -> list[tuple[datetime, datetime]]:
    """The current period, preceded by any periods the renewal sweep advanced past before they were
    invoiced (billed at the current plan, `months` long), minus periods that already have an invoice."""
    start, end = subscription.current_period_start, subscription.current_period_end
    periods = []
    if subscription.uninvoiced_since is not None and subscription.status != "trialing":
        missed = periods_between(subscription.uninvoiced_since, start, months=months,
                                 anchor_day=subscription.billing_anchor_day)
        periods = [(s, min(e, start)) for s, e in missed]
    periods.append((start, end))
    return [p for p in periods if p[0] not in invoiced_starts]


# What the sweep reads of each subscription: plain rows, no model instances (measured: building
# instances with their account, plan and coupon cost more than everything else in a batch).
_SUBSCRIPTION_COLUMNS = ("pk", "public_id", "organization_id", "account_id", "account__public_id", "plan_id",
                         "quantity", "unit_amount", "coupon_id", "coupon_periods_used", "status",
                         "current_period_start", "current_period_end", "billing_anchor_day", "uninvoiced_since")
_INVOICE_COLUMNS = ["public_id", "organization", "account", "subscription", "number", "status", "currency",
                    "period_start", "period_end", "subtotal", "discount", "credit_applied", "total", "amount_paid",
                    "amount_due", "coupon", "due_date", "created_at", "paid_at"]
_LINE_COLUMNS = ["invoice", "description", "plan", "quantity", "unit_amount", "amount", "period_start",
                 "period_end"]


def unit_price(plan: Plan, unit_amount: int | None) -> int:
    """A subscription's price per unit: its agreed price (a proposal's override), else its plan's amount."""
    return plan.amount if unit_amount is None else unit_amount


@dataclass
class _NewInvoice:
    """An invoice the sweep is about to insert, with the attribute names of Invoice."""

    subscription: object  # a row of _SUBSCRIPTION_COLUMNS
    plan: Plan
    coupon: Coupon | None
    period_start: datetime
    period_end: datetime
    subtotal: int
    discount: int
    currency: str
    due_date: date
    created_at: datetime
    public_id: str = ""
    number: int = 0
    pk: int | None = None
    kind: str = "period"
    collection_method: str = "charge"
    credit_applied: int = 0
    total: int = 0
    amount_due: int = 0
    amount_paid: int = 0
    status: str = "open"
    paid_at: datetime | None = None
    voided_at: datetime | None = None

    def settle(self, credit: int, now: datetime) -> None:
        self.credit_applied = credit
        self.total = self.amount_due = self.subtotal - self.discount - credit
        self.status = "open" if self.total > 0 else "paid"
        self.paid_at = None if self.total > 0 else now

    @property
    def trial(self) -> bool:
        return self.subscription.status == "trialing"

    def line(self) -> dict:
        s = self.subscription
        return {"description": f"{'Trial of ' if self.trial else ''}{self.plan.name} × {s.quantity}"[:300],
                "plan": self.plan.public_id, "quantity": s.quantity,
                "unit_amount": 0 if self.trial else unit_price(self.plan, s.unit_amount),
                "amount": self.subtotal, "period_start": self.period_start, "period_end": self.period_end,
                "service_code": None}

    def data(self) -> dict:
        return _invoice_dict(self, account=self.subscription.account__public_id,
                             subscription=self.subscription.public_id, coupon=_id(self.coupon), lines=[self.line()],
                             payment_method=None)

    def instance(self) -> Invoice:
        """The inserted invoice as a model instance (without reading it back)."""
        s = self.subscription
        invoice = Invoice(pk=self.pk, public_id=self.public_id, organization_id=s.organization_id,
                          account_id=s.account_id, subscription_id=s.pk, number=self.number, kind=self.kind,
                          collection_method=self.collection_method, status=self.status, currency=self.currency,
                          period_start=self.period_start, period_end=self.period_end, subtotal=self.subtotal,
                          discount=self.discount, credit_applied=self.credit_applied, total=self.total,
                          amount_paid=self.amount_paid, amount_due=self.amount_due, coupon=self.coupon,
                          due_date=self.due_date, created_at=self.created_at, paid_at=self.paid_at)
        invoice._state.adding, invoice._state.db = False, "default"
        return invoice

    def row(self) -> tuple:
        s = self.subscription
        return (self.public_id, s.organization_id, s.account_id, s.pk, self.number, self.status, self.currency,
                self.period_start, self.period_end, self.subtotal, self.discount, self.credit_applied, self.total,
                self.amount_paid, self.amount_due, self.coupon.pk if self.coupon else None, self.due_date,
                self.created_at, self.paid_at)

    def line_row(self) -> tuple:
        line = self.line()
        return (self.pk, line["description"], self.plan.pk, line["quantity"], line["unit_amount"], line["amount"],
                self.period_start, self.period_end)


def _new_invoice(subscription, plan: Plan, coupon: Coupon | None, period: tuple[datetime, datetime], *,
                 periods_used: int, now: datetime, as_of: datetime) -> _NewInvoice:
    unit_amount = 0 if subscription.status == "trialing" else unit_price(plan, subscription.unit_amount)
    subtotal = unit_amount * subscription.quantity
    applied = None
    if subtotal > 0 and coupon_in_force(coupon, periods_used) and coupon_applies_to(coupon, plan):
        applied = coupon
    new = _NewInvoice(subscription=subscription, plan=plan, coupon=applied, period_start=period[0],
                      period_end=period[1], subtotal=subtotal,
                      discount=coupon_discount(applied, subtotal) if applied else 0, currency=plan.currency,
                      due_date=due_date_for(period[0], as_of), created_at=now, public_id=new_public_id("in"))
    new.settle(0, now)
    return new


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


def generate_invoices(*, subscription_ids, as_of: datetime, plans: dict[int, Plan] | None = None,
                      organizations: dict[int, Organization] | None = None,
                      created: list | None = None) -> dict[str, int]:
    """Invoice the due periods of these subscriptions in the caller's transaction, with a fixed
    number of queries per call (plus one ledger update per account that has credit). Returns tallies.
    `plans` and `organizations` (by pk): rows the caller already holds, not read again; `created`
    receives the new invoices (see `_NewInvoice`)."""
    now = clock.now()
    subscriptions = list(
        Subscription.objects.filter(pk__in=subscription_ids, status__in=BILLABLE_STATUSES,
                                    current_period_start__lte=as_of)
        .order_by("pk").values_list(*_SUBSCRIPTION_COLUMNS, named=True))
    if not subscriptions:
        return {}
    sequences = _lock_sequences(sorted({s.organization_id for s in subscriptions}))
    plan_ids = {s.plan_id for s in subscriptions}
    if plans is None or not plan_ids <= set(plans):
        plans = Plan.objects.in_bulk(plan_ids)
    coupon_ids = {s.coupon_id for s in subscriptions if s.coupon_id is not None}
    coupons = Coupon.objects.prefetch_related("plans").in_bulk(coupon_ids) if coupon_ids else {}

    # Under the lock: which of the periods we might bill are already invoiced (by a concurrent run).
    earliest = min(s.uninvoiced_since or s.current_period_start for s in subscriptions)
    invoiced = defaultdict(set)
    for subscription_id, period_start in Invoice.objects.filter(
            subscription_id__in=[s.pk for s in subscriptions], period_start__gte=earliest).values_list(
            "subscription_id", "period_start"):
        invoiced[subscription_id].add(period_start)

    new_invoices: list[_NewInvoice] = []
    coupon_periods: dict[int, int] = {}
    caught_up: list[int] = []
    for subscription in subscriptions:
        plan, coupon = plans[subscription.plan_id], coupons.get(subscription.coupon_id)
        used = subscription.coupon_periods_used
        for period in periods_to_bill(subscription, plan.months_per_period, invoiced[subscription.pk]):
            new = _new_invoice(subscription, plan, coupon, period, periods_used=used, now=now, as_of=as_of)
            used += new.coupon is not None
            new_invoices.append(new)
        if used != subscription.coupon_periods_used:
            coupon_periods[subscription.pk] = used - subscription.coupon_periods_used
        if subscription.uninvoiced_since is not None:
            caught_up.append(subscription.pk)
    if not new_invoices:
        return {}

    # Credits: only accounts with a balance are touched; planned here, consumed after the insert.
    by_currency = defaultdict(set)
    for new in new_invoices:
        if new.total > 0:
            by_currency[new.currency].add(new.subscription.account_id)
    balances = {(currency, account_id): balance for currency, account_ids in by_currency.items()
                for account_id, balance in balances_for(list(account_ids), currency, as_of).items()}
    for new in new_invoices:
        key = (new.currency, new.subscription.account_id)
        credit = min(balances.get(key, 0), new.total)
        if credit:
            balances[key] -= credit
            new.settle(credit, now)

    for new in new_invoices:
        sequence = sequences[new.subscription.organization_id]
        sequence.last_number += 1
        new.number = sequence.last_number
    for sequence in sequences.values():
        InvoiceNumberSequence.objects.filter(pk=sequence.pk).update(last_number=sequence.last_number)
    ids = insert_rows(Invoice, _INVOICE_COLUMNS, [new.row() for new in new_invoices], returning_ids=True)
    for new, pk in zip(new_invoices, ids, strict=True):
        new.pk = pk
    insert_rows(InvoiceLine, _LINE_COLUMNS, [new.line_row() for new in new_invoices])

    for new in new_invoices:
        if new.credit_applied:
            applied = consume_credit(account_id=new.subscription.account_id, currency=new.currency,
                                     up_to=new.credit_applied, invoice=Invoice(pk=new.pk), as_of=as_of)
            if applied != new.credit_applied:  # the ledger moved since balances_for read it
                new.settle(applied, now)
                Invoice.objects.filter(pk=new.pk).update(credit_applied=new.credit_applied, total=new.total,
                                                         amount_due=new.amount_due, status=new.status,
                                                         paid_at=new.paid_at)

    increments = defaultdict(list)
    for subscription_id, n in coupon_periods.items():
        increments[n].append(subscription_id)
    for n, ids in increments.items():
        Subscription.objects.filter(pk__in=ids).update(coupon_periods_used=F("coupon_periods_used") + n)
    if caught_up:
        Subscription.objects.filter(pk__in=caught_up).update(uninvoiced_since=None)

    organization_ids = {new.subscription.organization_id for new in new_invoices}
    if organizations is None or not organization_ids <= set(organizations):
        organizations = Organization.objects.in_bulk(organization_ids)
    events = []
    for new in new_invoices:
        data, organization = new.data(), organizations[new.subscription.organization_id]
        events.append(EventDraft(organization, "invoice.created", data))
        if new.status == "paid":
            events.append(EventDraft(organization, "invoice.paid", data))
    record_events(events)
    if created is not None:
        created.extend(new_invoices)
    return {"invoices_created": len(new_invoices), "paid_at_once": sum(new.status == "paid" for new in new_invoices),
            "missed_periods_billed": len(new_invoices) - len({new.subscription.pk for new in new_invoices})}


# --- invoicing at the moment it happens --------------------------------------------------------------


def invoice_current_period(*, subscription: Subscription) -> Invoice | None:
    """Invoice the subscription's current paid period now if it has started and has no invoice yet,
    in the caller's transaction, through the sweep's own `generate_invoices`: the (subscription,
    period_start) key keeps it single whichever runs first. Used at sign-up (the first period) and
    before a proration. Nothing for a trial or a period that has not started. Returns the invoice."""
    now = clock.now()
    if subscription.status not in ("active", "past_due") or subscription.current_period_start > now:
        return None
    created: list[_NewInvoice] = []
    generate_invoices(subscription_ids=[subscription.pk], as_of=now, plans={subscription.plan_id: subscription.plan},
                      organizations={subscription.organization_id: subscription.organization}, created=created)
    for new in created:
        if new.period_start == subscription.current_period_start:
            return new.instance()
    return current_period_invoice(subscription)  # invoiced before (or a concurrent run invoiced it)


def current_period_invoice(subscription: Subscription) -> Invoice | None:
    return Invoice.objects.filter(subscription=subscription, period_start=subscription.current_period_start).first()


def latest_invoice_summary(subscription: Subscription) -> dict | None:
    """The subscription's newest invoice as a subscription response shows it (id, status, total)."""
    row = (Invoice.objects.filter(subscription=subscription).order_by("-pk")
           .values("public_id", "status", "total", "amount_due", "currency").first())
    if row is None:
        return None
    return {"id": row["public_id"], "status": row["status"], "total": row["total"],
            "amount_due": row["amount_due"], "currency": row["currency"]}


def invoice_summary(invoice: Invoice) -> dict:
    """`invoice` as latest_invoice_summary shows it (for the invoice a request just made: no query)."""
    return {"id": invoice.public_id, "status": invoice.status, "total": invoice.total,
            "amount_due": invoice.amount_due, "currency": invoice.currency}


@dataclass
class LineDraft:
    """A line of an invoice made at once (a one-off invoice, a proration)."""

    description: str
    unit_amount: int
    quantity: int = 1
    plan: Plan | None = None
    period_start: datetime | None = None
    period_end: datetime | None = None
    service_code: str = ""
    amount: int | None = None  # default unit_amount × quantity; a proration gives its rounded amount

    def __post_init__(self):
        if self.amount is None:
            self.amount = self.unit_amount * self.quantity


def issue_invoice(*, organization, account, lines: list[LineDraft], currency: str, kind: str, due_date: date,
                  subscription: Subscription | None = None, payment_method=None, collection_method: str = "charge",
                  coupon: Coupon | None = None) -> Invoice:
    """Issue one invoice now, in the caller's transaction: the next number, the account's credit
    applied as on period invoices, invoice.created (and invoice.paid when nothing is due). A negative
    subtotal (a downgrade's credit exceeds its charge) makes a zero invoice and grants the difference
    to the account as credit, never a refund."""
    now = clock.now()
    sequence = _lock_sequences([organization.pk])[organization.pk]
    sequence.last_number += 1
    InvoiceNumberSequence.objects.filter(pk=sequence.pk).update(last_number=sequence.last_number)
    subtotal = sum(line.amount for line in lines)
    invoice = Invoice.objects.create(
        organization=organization, account=account, subscription=subscription, number=sequence.last_number,
        kind=kind, collection_method=collection_method, payment_method=payment_method, status="open",
        currency=currency, subtotal=subtotal, total=max(subtotal, 0), amount_due=max(subtotal, 0), coupon=coupon,
        due_date=due_date, created_at=now)
    InvoiceLine.objects.bulk_create([
        InvoiceLine(invoice=invoice, description=line.description[:300], plan=line.plan, quantity=line.quantity,
                    unit_amount=line.unit_amount, amount=line.amount, period_start=line.period_start,
                    period_end=line.period_end, service_code=line.service_code) for line in lines])
    if subtotal < 0:
        grant_credit(account=account, amount=-subtotal, currency=currency,
                     reason=f"proration: {invoice.public_id} credits more than it charges")
    elif subtotal > 0:
        applied = consume_credit(account_id=account.pk, currency=currency, up_to=subtotal, invoice=invoice,
                                 as_of=now)
        invoice.credit_applied = applied
        invoice.total = invoice.amount_due = subtotal - applied
    if invoice.amount_due == 0:
        invoice.status, invoice.paid_at = "paid", now
    invoice.save(update_fields=["credit_applied", "total", "amount_due", "status", "paid_at"])
    invoice.account, invoice.organization = account, organization
    data = invoice_data(invoice)
    drafts = [EventDraft(organization, "invoice.created", data)]
    if invoice.status == "paid":
        drafts.append(EventDraft(organization, "invoice.paid", data))
    record_events(drafts)
    return invoice


def change_subscription_now(*, subscription: Subscription, changes: dict) -> Invoice | None:
    """`PATCH /subscriptions/{id}` with `proration: now`: the current period is invoiced if it was not
    yet (at the old price), the change applies at once, and the rest of the period is invoiced (see
    invoicing/proration.py). Returns the proration invoice, if the change made one."""
    period_invoice = invoice_current_period(subscription=subscription)
    old_plan, old_quantity, old_unit_amount = subscription.plan, subscription.quantity, subscription.unit_amount
    update_subscription(subscription=subscription, changes=changes, at_once=True)
    now = clock.now()
    start, end = subscription.current_period_start, subscription.current_period_end
    if period_invoice is None or not start <= now < end:
        return None  # a trial (or a period not started): nothing was billed, nothing to prorate
    period_coupon = period_invoice.coupon if period_invoice.discount else None
    old = proration.price(old_plan, old_quantity, period_coupon, unit_amount=old_unit_amount)
    new = proration.price(subscription.plan, subscription.quantity, period_coupon,
                          unit_amount=subscription.unit_amount)
    if (old.plan.pk, old.quantity) == (new.plan.pk, new.quantity):
        return None
    lines = [LineDraft(description=line.description, unit_amount=line.price.unit,
                       quantity=line.price.quantity, plan=line.price.plan, period_start=line.period_start,
                       period_end=line.period_end, amount=line.amount)
             for line in proration.proration_lines(old=old, new=new, at=now, period_start=start, period_end=end)]
    return issue_invoice(organization=subscription.organization, account=subscription.account, lines=lines,
                         currency=subscription.plan.currency, kind="proration", subscription=subscription,
                         coupon=period_coupon, due_date=due_date_for(now, now))


def create_one_off_invoice(*, organization, account: str, lines: list[dict], currency: str | None = None,
                           due_date: date | None = None, payment_method: str | None = None,
                           collect: str = "charge_now") -> Invoice:
    """An invoice for anything but a subscription period (`POST /invoices`). `collect` charge_now: it
    is charged right after commit with `payment_method` (default: the account's default method);
    send: the customer pays it from the invoice they are sent. Credits apply as on period invoices."""
    billing_account = BillingAccount.objects.filter(organization=organization, public_id=account).first()
    if billing_account is None:
        raise NotFound(f"no billing account {account!r}", field="account")
    today = clock.now().date()
    if due_date is not None and due_date < today:
        raise ValidationFailed("due_date must be today or later", field="due_date")
    method = None
    if payment_method is not None:
        method = PaymentMethod.objects.filter(account=billing_account, public_id=payment_method,
                                              status="active").first()
        if method is None:
            raise ValidationFailed(f"no active payment method {payment_method!r} on this account",
                                   field="payment_method")
    elif collect == "charge_now" and not PaymentMethod.objects.filter(account=billing_account, is_default=True,
                                                                      status="active").exists():
        raise ValidationFailed("the account has no default payment method to charge: give payment_method, or "
                               "collect: send", field="payment_method")
    drafts = [LineDraft(description=line["description"], unit_amount=line["unit_amount"],
                        quantity=line["quantity"], service_code=line.get("service_code") or "") for line in lines]
    if sum(line.amount for line in drafts) <= 0:
        raise ValidationFailed("the lines must add up to more than zero", field="lines")
    return issue_invoice(organization=organization, account=billing_account, lines=drafts,
                         currency=currency or organization.default_currency, kind="one_off",
                         payment_method=method, collection_method="charge" if collect == "charge_now" else "send",
                         due_date=due_date or due_date_for(clock.now(), clock.now()))
