"""Payments: what a charge's outcome does to the payment, its invoice and the account. Services never commit.

A charge is made in three steps (see charging.py): `start_charge` writes the Payment row (`processing`,
with its idempotency key) in one transaction, the gateway is called outside any transaction, and
`apply_result` records the answer in another. Callbacks (callbacks/processing.py) and reconciliation
(reconciliation.py) report outcomes through the same `apply_result`, so every path obeys one rule:
a payment never moves backwards. A late "pending" after "paid" changes nothing; money that arrives
for a canceled or failed payment is still recorded, and what it pays beyond the invoice becomes
account credit (payment.overpaid).
"""

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import build, update_rows
from cobrador.core.errors import ValidationFailed
from cobrador.customers.credits import grant_credit
from cobrador.customers.models import PaymentMethod
from cobrador.events.services import EventDraft, record_events
from cobrador.gateways.base import ChargeResult
from cobrador.gateways.registry import config_for_method
from cobrador.invoicing.models import Invoice
from cobrador.invoicing.services import invoice_data
from cobrador.organizations.services import attach_organizations
from cobrador.payments.errors import (
    InvoiceNotPayable,
    PaymentFullyRefunded,
    PaymentInFlight,
    PaymentMethodUnusable,
    PaymentNotRefundable,
)
from cobrador.payments.models import Payment, PaymentRefund

IN_FLIGHT = ("processing", "unknown")
# An invoice in these states can still take a payment; money for any other (paid, void) is credit.
PAYABLE_INVOICE_STATUSES = ("open", "uncollectible")
DOCUMENT_METHODS = ("bank_slip", "pix")

# A `processing` row nobody finished (a worker died between the call and the record) is first asked
# about this long after it was written; any HTTP call has long timed out by then.
STUCK_AFTER = timedelta(minutes=5)
# When to ask the provider about an unknown outcome: 5 min after it, then 1 h later, then daily.
RECONCILE_DELAYS = (timedelta(minutes=5), timedelta(hours=1), timedelta(days=1))
# A charge the provider says it does not have, asked this many times (5 min and 1 h after), never
# reached it: the payment fails (soft) and dunning may charge again.
NOT_FOUND_LIMIT = 2
# A pending boleto/PIX is paid by callback; the provider is asked only once it should have expired
# (Kobana allows 60 GETs an hour: polling every pending document would exhaust it), then weekly.
PENDING_CHECK_AFTER_EXPIRY = timedelta(days=1)
PENDING_CHECK_INTERVAL = timedelta(days=7)
PIX_MIN_LIFETIME = timedelta(days=1)
BOLETO_MIN_DAYS = 3


def reconcile_delay(asked: int) -> timedelta:
    return RECONCILE_DELAYS[min(asked, len(RECONCILE_DELAYS) - 1)]


# --- what the API returns ---------------------------------------------------------------------------


def refund_data(refund: PaymentRefund) -> dict:
    return {
        "id": refund.public_id,
        "object": "refund",
        "amount": refund.amount,
        "reason": refund.reason or None,
        "status": refund.status,
        "failure_message": refund.failure_message or None,
        "created_at": refund.created_at,
    }


def payable_document_fields(payment: Payment) -> dict:
    """What the customer needs to pay a boleto or PIX (empty fields are None)."""
    return {
        "boleto_url": payment.boleto_url or None,
        "boleto_barcode": payment.boleto_barcode or None,
        "boleto_line": payment.boleto_line or None,
        "pix_copy_paste": payment.pix_copy_paste or None,
        "pix_qr_code_url": payment.pix_qr_code_url or None,
        "expires_at": payment.expires_at,
    }


def payment_data(payment: Payment, refunds: list[PaymentRefund] | None = None) -> dict:
    if refunds is None:
        # Only a payment that was succeeded before can have refunds: skip the query for every other one.
        was_succeeded = payment.status == "succeeded" and not getattr(payment, "_just_succeeded", False)
        has_refunds = payment.pk and (payment.status == "refunded" or payment.amount_refunded or was_succeeded)
        refunds = list(payment.refunds.order_by("pk")) if has_refunds else []
    return {
        "id": payment.public_id,
        "object": "payment",
        "invoice": payment.invoice.public_id,
        "account": payment.account.public_id,
        "payment_method": payment.payment_method.public_id if payment.payment_method_id else None,
        "method": payment.method,
        "provider": payment.provider,
        "provider_charge_id": payment.provider_charge_id or None,
        "provider_order_id": payment.provider_order_id or None,
        "status": payment.status,
        "amount": payment.amount,
        "amount_paid": payment.amount_paid,
        "amount_refunded": payment.amount_refunded,
        "currency": payment.currency,
        "failure_code": payment.failure_code or None,
        "failure_message": payment.failure_message or None,
        "decline_class": payment.decline_class or None,
        "idempotency_key": payment.idempotency_key,
        "source": payment.source,
        "attempt_number": payment.attempt_number,
        **payable_document_fields(payment),
        "created_at": payment.created_at,
        "updated_at": payment.updated_at,
        "paid_at": payment.paid_at,
        "failed_at": payment.failed_at,
        "canceled_at": payment.canceled_at,
        "refunds": [refund_data(r) for r in refunds],
    }


# --- the effects of recording outcomes ----------------------------------------------------------------


# What recording an outcome may change on a payment and on its invoice.
PAYMENT_STATE_FIELDS = ["status", "updated_at", "amount_paid", "amount_refunded", "paid_at", "failed_at",
                        "canceled_at", "failure_code", "failure_message", "decline_class", "reconcile_attempts",
                        "next_reconcile_at", "provider_charge_id", "provider_order_id", "boleto_url",
                        "boleto_barcode", "boleto_line", "pix_copy_paste", "pix_qr_code_url", "expires_at"]
INVOICE_STATE_FIELDS = ["amount_paid", "amount_due", "status", "paid_at"]
# What may change on an invoice's row once it is open (lock_payments reads them onto held instances).
INVOICE_CHANGING_FIELDS = [*INVOICE_STATE_FIELDS, "voided_at", "coupon_id"]


@dataclass
class Effects:
    """What applying outcomes did, collected over one transaction: an audit log of changes, the domain
    events to write (in one bulk insert, by `flush`), and the work to do after commit."""

    changes: list[dict] = field(default_factory=list)
    events: list[EventDraft] = field(default_factory=list)
    # Invoices just paid: their other outstanding boleto/PIX payments are canceled after commit.
    paid_invoice_ids: set[int] = field(default_factory=set)
    # Batch mode: rows changed are written by `write` in a few bulk updates instead of one UPDATE each.
    bulk: bool = False
    _payments: dict = field(default_factory=dict)
    _invoices: dict = field(default_factory=dict)

    def note(self, payment: Payment, **change) -> None:
        self.changes.append({"payment": payment.public_id, **change})

    def emit(self, organization, type: str, data: dict) -> None:  # noqa: A002
        self.events.append(EventDraft(organization, type, data))

    def save_payment(self, payment: Payment) -> None:
        if self.bulk:
            self._payments[payment.pk] = payment
        else:
            payment.save(update_fields=PAYMENT_STATE_FIELDS)

    def save_invoice(self, invoice: Invoice) -> None:
        if self.bulk:
            self._invoices[invoice.pk] = invoice
        else:
            invoice.save(update_fields=INVOICE_STATE_FIELDS)

    def write(self) -> None:
        """Write the rows changed in batch mode (call inside the transaction)."""
        update_rows(list(self._payments.values()), PAYMENT_STATE_FIELDS)
        update_rows(list(self._invoices.values()), INVOICE_STATE_FIELDS)
        self._payments, self._invoices = {}, {}

    def flush(self) -> None:
        """Call inside the transaction, after the last change."""
        self.write()
        record_events(self.events)  # payment.unknown among them: payments/sink.py asks again in 5 minutes
        self.events = []


def next_status(current: str, reported: str) -> str | None:
    """The status a payment moves to when the provider reports `reported`, or None to stay.

    Payments only move forward: in flight -> pending -> succeeded -> refunded, with failed and canceled
    as ends that only money arriving (succeeded) can leave."""
    if reported == "unknown":
        return "unknown" if current == "processing" else None
    if current in IN_FLIGHT:
        return reported
    if current == "pending":
        return reported if reported in ("succeeded", "failed", "canceled") else None
    if current in ("failed", "canceled"):
        return "succeeded" if reported == "succeeded" else None
    if current == "succeeded":
        return "refunded" if reported == "refunded" else None
    return None


def _fill_provider_fields(payment: Payment, result: ChargeResult) -> list[str]:
    """Provider ids and boleto/PIX documents: filled when missing, never overwritten."""
    filled = []
    for name in ("provider_charge_id", "provider_order_id", "boleto_url", "boleto_barcode", "boleto_line",
                 "pix_copy_paste", "pix_qr_code_url", "expires_at"):
        value = getattr(result, name, None)
        if value and not getattr(payment, name):
            if isinstance(value, str):
                value = value[:Payment._meta.get_field(name).max_length or None]
            setattr(payment, name, value)
            filled.append(name)
    return filled


def apply_result(*, payment: Payment, result: ChargeResult, effects: Effects, via: str) -> bool:
    """Record what the provider says about `payment` (locked by the caller, in its transaction).
    `via` says who reported it (charge, callback, reconciliation). Returns whether anything changed."""
    reported = result.status
    if reported == "refunded" and payment.status not in ("succeeded", "refunded"):
        return _paid_and_refunded(payment, result, effects, via)
    now = clock.now()
    before = payment.status
    target = next_status(before, reported)
    filled = _fill_provider_fields(payment, result)
    if target is None:
        if filled:
            payment.updated_at = now
            effects.save_payment(payment)
            effects.note(payment, via=via, filled=filled)
        else:
            effects.note(payment, via=via, ignored=f"{reported} after {before}")
        return bool(filled)

    payment.status = target
    payment.updated_at = now
    if target == "succeeded":
        payment._just_succeeded = True  # noqa: SLF001 - our own marker on this instance: it was not succeeded before, so it has no refunds
        payment.amount_paid = result.amount_paid or payment.amount
        payment.paid_at = result.paid_at or now
        payment.failure_code = payment.failure_message = payment.decline_class = ""
        payment.next_reconcile_at = None
    elif target == "failed":
        payment.failure_code = (result.failure_code or "declined")[:64]
        payment.failure_message = result.failure_message[:500]
        payment.decline_class = result.decline_class or ("soft" if payment.method == "card" else "")
        payment.failed_at = now
        payment.next_reconcile_at = None
    elif target == "pending":
        if payment.method == "card":  # still processing at the provider: ask like an unknown outcome
            payment.next_reconcile_at = now + reconcile_delay(payment.reconcile_attempts)
        else:
            expiry = payment.expires_at or (now + PENDING_CHECK_INTERVAL)
            payment.next_reconcile_at = max(expiry, now) + PENDING_CHECK_AFTER_EXPIRY
    elif target == "unknown":
        payment.failure_code = result.failure_code[:64]
        payment.failure_message = result.failure_message[:500]
        payment.reconcile_attempts = 0
        payment.next_reconcile_at = now + RECONCILE_DELAYS[0]
    elif target == "canceled":
        payment.canceled_at = now
        payment.next_reconcile_at = None
    elif target == "refunded":
        if payment.refunds.filter(status__in=IN_FLIGHT).exists():
            # Our own refund is on its way; its answer records it (no double count).
            payment.status = before
            effects.note(payment, via=via, ignored="refunded while a refund is in flight")
            if filled:
                effects.save_payment(payment)
            return bool(filled)
        payment.amount_refunded = payment.amount_paid
        payment.next_reconcile_at = None
    effects.save_payment(payment)
    effects.note(payment, via=via, status=[before, target], **({"filled": filled} if filled else {}))

    organization = payment.organization
    if target == "succeeded":
        effects.emit(organization, "payment.succeeded", payment_data(payment))
        _settle_invoice(payment, effects)
    elif target == "failed":
        effects.emit(organization, "payment.failed", payment_data(payment))
        invoice = payment.invoice
        if invoice.status == "open":
            effects.emit(organization, "invoice.payment_failed", invoice_data(invoice))
    elif target == "pending":
        effects.emit(organization, "payment.pending", payment_data(payment))
    elif target == "unknown":
        effects.emit(organization, "payment.unknown", payment_data(payment))
    elif target == "refunded":
        effects.emit(organization, "payment.refunded", payment_data(payment))
    return True


def _paid_and_refunded(payment: Payment, result: ChargeResult, effects: Effects, via: str) -> bool:
    """The provider took the money and gave it back before we heard of the payment (e.g. canceling a
    boleto that had just been paid refunds it): the invoice never counts it, and no credit is due."""
    before, now = payment.status, clock.now()
    _fill_provider_fields(payment, result)
    payment.status = "refunded"
    payment.amount_paid = payment.amount_refunded = result.amount_paid or payment.amount
    payment.paid_at = result.paid_at or now
    payment.updated_at = now
    payment.next_reconcile_at = None
    effects.save_payment(payment)
    effects.note(payment, via=via, status=[before, "refunded"], note="paid and refunded at the provider")
    effects.emit(payment.organization, "payment.refunded", payment_data(payment, refunds=[]))
    return True


def _settle_invoice(payment: Payment, effects: Effects) -> None:
    """Apply a succeeded payment's money to its invoice (locked with it by lock_payments); what the
    invoice does not need is credit."""
    invoice = payment.invoice
    received = payment.amount_paid
    applied = 0
    if invoice.status in PAYABLE_INVOICE_STATUSES:
        applied = min(received, invoice.amount_due)
        invoice.amount_paid += applied
        invoice.amount_due -= applied
        if invoice.amount_due == 0:
            invoice.status = "paid"
            invoice.paid_at = payment.paid_at
            effects.paid_invoice_ids.add(invoice.pk)
        effects.save_invoice(invoice)
        effects.note(payment, invoice=invoice.public_id, applied=applied, invoice_status=invoice.status)
        if invoice.status == "paid":
            effects.emit(payment.organization, "invoice.paid", invoice_data(invoice))
    excess = received - applied
    if excess > 0:
        grant = grant_credit(account=payment.account, amount=excess, currency=payment.currency,
                             reason=f"overpayment: {payment.public_id} paid {invoice.public_id} "
                                    f"({invoice.status}) beyond what it owed")
        effects.note(payment, overpaid=excess, credit_grant=grant.public_id)
        effects.emit(payment.organization, "payment.overpaid",
                     {**payment_data(payment), "overpaid_amount": excess, "credit_grant": grant.public_id})


def lock_payments(ids, known: dict[int, Payment] | None = None) -> list[Payment]:
    """Lock payments and then their invoices (always in that order, by primary key), with what events need
    loaded. Each invoice gets its payment's account rather than a second copy.

    `known` holds the caller's own instances of some of the payments (a batch that just created them),
    each with its invoice (lines prefetched, subscription and coupon loaded), account and payment method
    attached: those are not loaded again; what may have changed on their rows since (their state, and
    an open invoice's) is read onto them as the rows are locked."""
    ids = sorted(set(ids))
    if not known:
        payments = list(Payment.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
                        .select_related("account", "payment_method"))
        held = {}
    else:
        locked = _lock_rows(Payment, ids, PAYMENT_STATE_FIELDS, known)
        others = Payment.objects.select_related("account", "payment_method").in_bulk(
            [pk for pk in locked if pk not in known])
        payments = [known.get(pk) or others[pk] for pk in locked]
        held = {p.invoice_id: p.invoice for p in payments if p.pk in known}
    attach_organizations(payments)
    invoice_ids = sorted({p.invoice_id for p in payments})
    loaded = Invoice.objects.filter(pk__in=[pk for pk in invoice_ids if pk not in held])
    if held:
        _lock_rows(Invoice, invoice_ids, INVOICE_CHANGING_FIELDS, held)
    else:
        loaded = loaded.select_for_update(of=("self",)).order_by("pk")
    invoices = {**held, **{i.pk: i for i in loaded.select_related("subscription", "coupon").prefetch_related("lines")}}
    for payment in payments:
        payment.invoice = invoice = invoices[payment.invoice_id]
        if invoice.account_id == payment.account_id:
            invoice.account = payment.account
    return payments


def _lock_rows(model, ids: list[int], fields: list[str], held: dict) -> list[int]:
    """Lock the rows `ids` of `model` in primary key order and read `fields` onto the `held` instances
    (by pk); returns the ids found. Setting a changed foreign key id drops its cached object."""
    locked = []
    for pk, *values in (model.objects.select_for_update(of=("self",)).filter(pk__in=ids).order_by("pk")
                        .values_list("pk", *fields)):
        locked.append(pk)
        if pk in held:
            for name, value in zip(fields, values, strict=True):
                setattr(held[pk], name, value)
    return locked


# --- starting a charge --------------------------------------------------------------------------------


def payment_in_progress(invoice_id: int) -> bool:
    """Whether a payment of the invoice is still being decided: in flight, or a card charge the provider
    answered `pending` (still processing there)."""
    return Payment.objects.filter(Q(status__in=IN_FLIGHT) | Q(method="card", status="pending"),
                                  invoice_id=invoice_id).exists()


def default_payment_method(account) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(account=account, is_default=True, status="active").first()


def start_charge(*, organization, invoice: Invoice, payment_method: PaymentMethod | None = None,
                 source: str = "invoice", attempt_number: int = 0) -> Payment:
    """Write the `processing` Payment of a charge of `invoice` (its amount due) with
    `payment_method` (default: the account's default method). Conflict while another payment of the
    invoice is in flight or when the invoice cannot be paid. The caller commits, then sends."""
    invoice = Invoice.objects.select_for_update(of=("self",)).select_related("account").get(
        pk=invoice.pk, organization=organization)
    if invoice.status not in PAYABLE_INVOICE_STATUSES or invoice.amount_due <= 0:
        raise InvoiceNotPayable(f"invoice {invoice.public_id} is {invoice.status} with {invoice.amount_due} due: "
                                "nothing to charge", field="invoice")
    if Payment.objects.filter(invoice=invoice, status__in=IN_FLIGHT).exists():
        raise PaymentInFlight(f"a payment of invoice {invoice.public_id} is in flight; wait for its outcome",
                                     field="invoice")
    if payment_method is None:
        payment_method = default_payment_method(invoice.account)
        if payment_method is None:
            raise PaymentMethodUnusable("the account has no default payment method", field="payment_method")
    elif payment_method.account_id != invoice.account_id or payment_method.status != "active":
        raise PaymentMethodUnusable("the payment method is not an active method of the invoice's account",
                                    field="payment_method")
    payment = new_payment(invoice=invoice, payment_method=payment_method,
                          config=config_for_method(organization, payment_method.type),
                          source=source, attempt_number=attempt_number, now=clock.now())
    try:
        with transaction.atomic():  # a savepoint: the partial unique index is the last word
            payment.save(force_insert=True)
    except IntegrityError:
        raise PaymentInFlight(f"a payment of invoice {invoice.public_id} is in flight; wait for its outcome",
                       field="invoice") from None
    return payment


def new_payment(*, invoice: Invoice, payment_method: PaymentMethod | None, config, source: str, attempt_number: int,
                now: datetime, method: str | None = None) -> Payment:
    """`payment_method` may be None for a boleto or PIX issued without a saved method (dunning does
    that for any account with a CPF/CNPJ): then `method` names it."""
    payment = build(
        Payment, organization_id=invoice.organization_id, invoice=invoice, account_id=invoice.account_id,
        payment_method=payment_method, method=method or payment_method.type, provider=config.provider, gateway=config,
        amount=invoice.amount_due, currency=invoice.currency, status="processing", source=source,
        attempt_number=attempt_number, created_at=now, updated_at=now, next_reconcile_at=now + STUCK_AFTER)
    # The key the provider deduplicates on: the payment's own id, so every retry of it is the same charge.
    payment.idempotency_key = payment.public_id
    return payment


def boleto_due_date(invoice: Invoice, today: date) -> date:
    return max(invoice.due_date, today + timedelta(days=BOLETO_MIN_DAYS))


def pix_expiry(invoice: Invoice, now: datetime) -> datetime:
    due_end = datetime.combine(invoice.due_date, datetime.max.time().replace(microsecond=0), tzinfo=now.tzinfo)
    return max(due_end, now + PIX_MIN_LIFETIME)


# --- refunds ------------------------------------------------------------------------------------------


def start_refund(*, organization, payment: Payment, amount: int | None, reason: str = "") -> PaymentRefund:
    """Write the `processing` refund of `amount` (default: all that is left) of a succeeded payment."""
    payment = Payment.objects.select_for_update().get(pk=payment.pk, organization=organization)
    if payment.status != "succeeded":
        raise PaymentNotRefundable(f"a {payment.status} payment cannot be refunded", field="payment")
    in_flight = sum(payment.refunds.filter(status__in=IN_FLIGHT).values_list("amount", flat=True))
    refundable = payment.amount_paid - payment.amount_refunded - in_flight
    if amount is None:
        amount = refundable
    if refundable <= 0:
        raise PaymentFullyRefunded("nothing is left to refund on this payment", field="amount")
    if amount <= 0 or amount > refundable:
        raise ValidationFailed(f"amount must be between 1 and {refundable}", field="amount")
    now = clock.now()
    refund = PaymentRefund(organization=organization, payment=payment, amount=amount, reason=reason,
                           status="processing", created_at=now, updated_at=now, next_attempt_at=now + STUCK_AFTER)
    refund.idempotency_key = refund.public_id
    refund.save(force_insert=True)
    return refund


def apply_refund_result(*, refund: PaymentRefund, result: ChargeResult | None, error: str = "") -> PaymentRefund:
    """Record the provider's answer to a refund (refund locked by the caller). `result` None with an
    `error`: refused before anything happened. A result with status unknown: ask again later."""
    now = clock.now()
    if refund.status not in IN_FLIGHT:
        return refund
    refund.updated_at = now
    if result is None:
        refund.status, refund.failure_message, refund.next_attempt_at = "failed", error[:500], None
        refund.save(update_fields=["status", "failure_message", "next_attempt_at", "updated_at"])
        return refund
    if result.status == "unknown":
        refund.status = "unknown"
        refund.next_attempt_at = now + reconcile_delay(refund.attempts - 1)
        refund.save(update_fields=["status", "next_attempt_at", "updated_at"])
        return refund
    refund.status, refund.next_attempt_at = "succeeded", None
    refund.save(update_fields=["status", "next_attempt_at", "updated_at"])
    payment = Payment.objects.select_for_update(of=("self",)).select_related(
        "organization", "invoice", "account", "payment_method").get(pk=refund.payment_id)
    payment.amount_refunded = min(payment.amount_paid, payment.amount_refunded + refund.amount)
    if payment.amount_refunded >= payment.amount_paid and payment.status == "succeeded":
        payment.status = "refunded"
    payment.updated_at = now
    payment.save(update_fields=["amount_refunded", "status", "updated_at"])
    data = payment_data(payment)
    record_events([EventDraft(payment.organization, "payment.refunded", {**data, "refund": refund_data(refund)})])
    return refund
