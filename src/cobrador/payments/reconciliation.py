"""Reconciliation: asking the provider about payments whose outcome we do not know, never charging again.

Due, by `next_reconcile_at <= as_of`:
* `unknown` payments (a timeout or 5xx after sending): asked 5 min after, then 1 h later, then daily;
* `processing` payments nobody finished (a worker died mid-charge): asked 5 min after they were written;
* card payments the provider reported `pending` (still processing there): on the same schedule;
* `pending` boleto/PIX payments: once a day after they expire, then weekly (callbacks are the main path);
* refunds whose answer was lost: the same refund is sent again with the same idempotency key.
And always: pending boleto/PIX payments of invoices that no longer need them are canceled.

A charge the provider does not know after NOT_FOUND_LIMIT asks never reached it: the payment fails
(soft, `charge_not_found`) and dunning may try again. Due rows are claimed by pushing
`next_reconcile_at` one lease ahead, so concurrent runs never ask twice at once.
"""

import logging
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F

from cobrador.core import clock, stopping
from cobrador.gateways.base import ChargeResult
from cobrador.gateways.registry import gateway_for
from cobrador.payments import charging, services
from cobrador.payments.models import Payment, PaymentRefund

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
BATCH_SIZE = 100
NOT_FOUND = "not_found"


def _claim(queryset, *, as_of: datetime, limit: int, field: str) -> list[int]:
    with transaction.atomic():
        due = queryset.filter(**{f"{field}__lte": as_of}).order_by(field)
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            queryset.model.objects.filter(pk__in=ids).update(**{field: as_of + LEASE})
    return ids


def ask_provider(payment: Payment, gateways: dict) -> ChargeResult | str:
    """What the provider says about `payment`: a result, NOT_FOUND, or an `unknown` result when it
    cannot be reached."""
    if payment.gateway_id not in gateways:
        gateways[payment.gateway_id] = gateway_for(payment.gateway)
    gateway = gateways[payment.gateway_id]
    try:
        if payment.provider_charge_id:
            return gateway.fetch_charge(method=payment.method, provider_charge_id=payment.provider_charge_id)
        found = gateway.find_charge(method=payment.method, reference=payment.public_id,
                                    idempotency_key=payment.idempotency_key)
        return NOT_FOUND if found is None else found
    except Exception as exc:  # noqa: BLE001 - still unknown; asked again later
        logger.info("reconciling %s: %s: %s", payment.public_id, type(exc).__name__, exc)
        return ChargeResult(status="unknown", failure_code="provider_unreachable",
                            failure_message=f"{type(exc).__name__} while asking the provider")


def _record_answer(payment: Payment, answer: ChargeResult | str, effects: services.Effects) -> str:
    """Apply one answer (payment locked). Returns what happened, for the run's counts."""
    now = clock.now()
    if payment.status not in ("processing", "unknown", "pending"):
        return "resolved_meanwhile"
    was_in_flight = payment.status in services.IN_FLIGHT
    if answer == NOT_FOUND or (isinstance(answer, ChargeResult) and answer.status == "unknown"):
        payment.reconcile_attempts += 1
        if answer == NOT_FOUND and was_in_flight and payment.reconcile_attempts >= services.NOT_FOUND_LIMIT:
            services.apply_result(payment=payment, effects=effects, via="reconciliation", result=ChargeResult(
                status="failed", failure_code="charge_not_found", decline_class="soft",
                failure_message="the provider has no record of this charge: it never reached the provider"))
            return "not_found_failed"
        if payment.status == "processing":
            payment.status = "unknown"
            effects.emit(payment.organization, "payment.unknown", services.payment_data(payment))
            effects.note(payment, via="reconciliation", status=["processing", "unknown"])
        payment.next_reconcile_at = now + services.reconcile_delay(payment.reconcile_attempts)
        payment.updated_at = now
        payment.save(update_fields=["status", "reconcile_attempts", "next_reconcile_at", "updated_at"])
        return "not_found" if answer == NOT_FOUND else "still_unknown"
    before = payment.status
    services.apply_result(payment=payment, result=answer, effects=effects, via="reconciliation")
    if payment.status == before:  # still pending (or unknown) at the provider: ask again later
        payment.reconcile_attempts += 1
        if payment.method == "card" or before in services.IN_FLIGHT:
            payment.next_reconcile_at = now + services.reconcile_delay(payment.reconcile_attempts)
        else:
            payment.next_reconcile_at = now + services.PENDING_CHECK_INTERVAL
        payment.save(update_fields=["reconcile_attempts", "next_reconcile_at"])
        return "unchanged"
    return payment.status


def reconcile_due_payments(*, as_of: datetime | None = None, max_batches: int | None = None) -> dict:
    """Ask the provider about every due payment, a claimed batch at a time; record the answers in one
    transaction per batch (a savepoint per payment, so one bad row never blocks the rest)."""
    as_of = as_of or clock.now()
    counts: dict[str, int] = {}
    gateways: dict = {}
    due = Payment.objects.filter(status__in=["processing", "unknown", "pending"])
    batches = 0
    while (max_batches is None or batches < max_batches) and not stopping.requested():
        ids = _claim(due, as_of=as_of, limit=BATCH_SIZE, field="next_reconcile_at")
        if not ids:
            break
        batches += 1
        payments = list(Payment.objects.filter(pk__in=ids).select_related("gateway", "invoice").order_by("pk"))
        to_cancel = [p for p in payments if p.status == "pending"
                     and p.invoice.status not in services.PAYABLE_INVOICE_STATUSES]
        to_ask = [p for p in payments if p not in to_cancel]
        answers = charging.call_concurrently(lambda p: ask_provider(p, gateways), to_ask)
        effects = services.Effects()
        with transaction.atomic():
            locked = {p.pk: p for p in services.lock_payments(p.pk for p in to_ask)}
            for payment, answer in zip(to_ask, answers, strict=True):
                try:
                    with transaction.atomic():
                        outcome = _record_answer(locked[payment.pk], answer, effects)
                except Exception:
                    logger.exception("reconciling %s failed; retried after the lease", payment.public_id)
                    outcome = "error"
                _bump(counts, outcome)
            effects.flush()
        for payment in to_cancel:
            _bump(counts, "canceled" if charging.cancel_payment(payment) else "cancel_failed")
        if effects.paid_invoice_ids:
            _bump(counts, "canceled", charging.cancel_outstanding_payments(effects.paid_invoice_ids))
    # Outstanding documents of invoices paid or voided elsewhere (the immediate cancel may have failed).
    orphans = list(Payment.objects.filter(status="pending").exclude(
        invoice__status__in=services.PAYABLE_INVOICE_STATUSES).exclude(provider_charge_id="")
        .values_list("invoice_id", flat=True).distinct()[:1000])
    if orphans:
        _bump(counts, "canceled", charging.cancel_outstanding_payments(orphans))
    for status, n in reconcile_due_refunds(as_of=as_of).items():
        _bump(counts, f"refunds_{status}", n)
    return counts


def _bump(counts: dict, key: str, n: int = 1) -> None:
    if n:
        counts[key] = counts.get(key, 0) + n


def reconcile_due_refunds(*, as_of: datetime) -> dict:
    """Send refunds whose answer was lost (or whose worker died) again, with the same idempotency key."""
    counts: dict[str, int] = {}
    while not stopping.requested():
        ids = _claim(PaymentRefund.objects.filter(status__in=["processing", "unknown"]), as_of=as_of,
                     limit=BATCH_SIZE, field="next_attempt_at")
        if not ids:
            return counts
        PaymentRefund.objects.filter(pk__in=ids).update(attempts=F("attempts") + 1)
        for refund in PaymentRefund.objects.filter(pk__in=ids).order_by("pk"):
            refund = charging.send_refund(refund)
            _bump(counts, refund.status)
    return counts
