"""Processing stored callbacks: claim a batch, apply each to its payment, record what changed.

A batch is one transaction with a savepoint per callback, so a callback that fails rolls back only
its own changes: it becomes `failed` with its error and is retried with backoff (RETRY_DELAYS) by
the callback-retry sweep, then left `failed` for an operator (admin or API: reprocess). The handler
is the same for every provider: the adapter parses the body into a CallbackEvent and the payment
moves by payments.services.apply_result, which never moves a payment backwards, so events that
arrive out of order (paid before pending) end in the right state.

Claiming sets `processing` and a lease in `next_attempt_at`; a worker that dies mid-batch leaves rows
whose lease runs out, and the sweep takes them again.
"""

import logging
import traceback
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from cobrador.callbacks.models import GatewayCallback
from cobrador.core import clock
from cobrador.gateways.base import ChargeResult
from cobrador.gateways.registry import gateway_for
from cobrador.payments import charging
from cobrador.payments import services as payments
from cobrador.payments.models import Payment

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
LEASE = timedelta(minutes=5)
# A `received` row older than this was missed by its wake-up (a lost task): the sweep takes it.
STALE_RECEIVED = timedelta(minutes=2)
# Delays before retry 1, 2, ... of a failed callback; after the last it stays failed.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
                timedelta(hours=4), timedelta(hours=12))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


class PaymentNotFound(Exception):
    """The callback names a charge we have no payment for (yet): retried with backoff."""


def _claim(condition: Q, *, now: datetime, limit: int = BATCH_SIZE) -> list[int]:
    with transaction.atomic():
        due = GatewayCallback.objects.filter(condition).order_by("pk")
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            GatewayCallback.objects.filter(pk__in=ids).update(
                status="processing", attempts=F("attempts") + 1, next_attempt_at=now + LEASE)
    return ids


def _find_payment(callback: GatewayCallback, event) -> Payment:
    payments_of = Payment.objects.filter(organization_id=callback.organization_id, provider=callback.provider)
    payment = None
    if event.reference:
        payment = payments_of.filter(public_id=event.reference).first()
    if payment is None and event.provider_charge_id:
        payment = payments_of.filter(provider_charge_id=event.provider_charge_id).first()
    if payment is None:
        raise PaymentNotFound(f"no payment for charge {event.provider_charge_id or '-'} "
                              f"(reference {event.reference or '-'}) yet")
    return payments.lock_payments([payment.pk])[0]


def handle_callback(callback: GatewayCallback, effects: payments.Effects) -> str:
    """Apply one callback (inside the caller's transaction); returns its final status."""
    gateway = gateway_for(callback.gateway)
    event = gateway.parse_callback(headers=callback.headers, body=bytes(callback.body))
    if event is None:
        effects.changes.append({"note": "event type not handled"})
        return "ignored"
    if event.status is None:
        effects.changes.append({"note": f"{event.event_type} changes no payment"})
        return "processed"
    payment = _find_payment(callback, event)
    result = _documents_in(callback, event) or ChargeResult(status=event.status)
    result.status, result.provider_charge_id = event.status, event.provider_charge_id
    result.amount_paid, result.paid_at = event.amount_paid, event.paid_at
    payments.apply_result(payment=payment, result=result, effects=effects, via=f"callback {event.event_type}")
    return "processed"


def _documents_in(callback: GatewayCallback, event) -> ChargeResult | None:
    """Kobana registers a PIX at the bank after creating it: its EMV code (and a boleto's line) arrive in
    a later callback's object. The payment's missing documents are filled from it."""
    if callback.provider != "kobana":
        return None
    from cobrador.gateways import kobana

    obj = (event.raw or {}).get("object") or {}
    resource = (obj.get("bank_billet") or obj.get("pix") or obj) if "operation" in obj else obj
    if not isinstance(resource, dict) or not resource:
        return None
    return (kobana.billet_result if event.event_type.startswith("bank_billet.") else kobana.pix_result)(resource)


def process_callbacks(ids: list[int]) -> dict:
    """Process claimed callbacks in one transaction (a savepoint each). Returns counts by status."""
    now = clock.now()
    callbacks = list(GatewayCallback.objects.filter(pk__in=ids, status="processing")
                     .select_related("gateway").order_by("pk"))
    batch = payments.Effects()
    counts: dict[str, int] = {}
    retry_at = None
    with transaction.atomic():
        for callback in callbacks:
            effects = payments.Effects()
            try:
                with transaction.atomic():
                    status = handle_callback(callback, effects)
                callback.status, callback.error, callback.next_attempt_at = status, "", None
                callback.processed_at = now
                callback.changes = effects.changes
                batch.events += effects.events
                batch.paid_invoice_ids |= effects.paid_invoice_ids
                batch.reconcile_soon |= effects.reconcile_soon
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried with backoff
                if not isinstance(exc, PaymentNotFound):
                    logger.warning("callback %s failed: %s", callback.public_id, exc, exc_info=True)
                callback.status = "failed"
                callback.error = (str(exc) if isinstance(exc, PaymentNotFound)
                                  else traceback.format_exc(limit=6))[:4000]
                callback.changes = []
                callback.next_attempt_at = (now + RETRY_DELAYS[callback.attempts - 1]
                                            if callback.attempts < MAX_ATTEMPTS else None)
                if callback.next_attempt_at and (retry_at is None or callback.next_attempt_at < retry_at):
                    retry_at = callback.next_attempt_at
            counts[callback.status] = counts.get(callback.status, 0) + 1
        GatewayCallback.objects.bulk_update(
            callbacks, ["status", "error", "next_attempt_at", "processed_at", "changes"], batch_size=500)
        batch.flush()
        if retry_at is not None:
            from cobrador.callbacks.tasks import retry_failed_callbacks

            retry_failed_callbacks.using(run_after=retry_at).enqueue()
    if batch.paid_invoice_ids:
        charging.cancel_outstanding_payments(batch.paid_invoice_ids)
    return counts


def _add(counts: dict, more: dict) -> None:
    for key, n in more.items():
        counts[key] = counts.get(key, 0) + n


def process_received(*, max_batches: int = 50) -> dict:
    """Process `received` callbacks until none are left (or max_batches)."""
    counts: dict[str, int] = {}
    for _ in range(max_batches):
        ids = _claim(Q(status="received"), now=clock.now())
        if not ids:
            break
        _add(counts, process_callbacks(ids))
    return counts


def due_for_retry(as_of: datetime) -> Q:
    return (Q(status="failed", next_attempt_at__lte=as_of)
            | Q(status="processing", next_attempt_at__lte=as_of)  # a worker died holding them
            | Q(status="received", received_at__lte=as_of - STALE_RECEIVED))  # their wake-up was lost


def retry_due(*, as_of: datetime | None = None) -> dict:
    """Rerun failed callbacks whose backoff has passed, and stuck ones."""
    as_of = as_of or clock.now()
    counts: dict[str, int] = {}
    while True:
        ids = _claim(due_for_retry(as_of), now=as_of)
        if not ids:
            return counts
        _add(counts, process_callbacks(ids))


def reprocess(callback: GatewayCallback) -> GatewayCallback:
    """An operator asks for a callback to be processed again (inside the caller's transaction)."""
    from cobrador.callbacks.tasks import process_received_callbacks

    callback.status, callback.error, callback.next_attempt_at, callback.attempts = "received", "", None, 0
    callback.save(update_fields=["status", "error", "next_attempt_at", "attempts"])
    process_received_callbacks.enqueue()
    return callback
