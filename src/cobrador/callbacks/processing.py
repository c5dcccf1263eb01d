"""Processing stored callbacks: claim a batch, apply each to its payment, record what changed.

A claimed batch is parsed first (no database), then applied a slice per short transaction: the slice's
payments are found and locked together and its rows written in bulk. A callback that cannot be
applied (its payment is not known yet, its body cannot be parsed) fails alone; any other error sends the
slice through again one callback at a time, so only the broken one fails. A failed callback keeps its
error and is retried with backoff (RETRY_DELAYS) by the callback-retry sweep, then left `failed` for an
operator (admin or API: reprocess). Processing enqueues nothing: it reports when the earliest failed
callback is due again, and the task or sweep that ran it enqueues the retry (callbacks/tasks.py). The
handler is the same for every provider: the adapter parses the body into a CallbackEvent and the payment
moves by payments.services.apply_result, which never moves a payment backwards, so events that arrive out
of order (paid before pending) end in the right state.

Claiming sets `processing` and a lease in `next_attempt_at`; a worker that dies mid-batch leaves rows
whose lease runs out, and the sweep takes them again.
"""

import logging
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import F, Q

from cobrador.callbacks.models import GatewayCallback
from cobrador.callbacks.providers import INBOUND
from cobrador.core import clock, stopping
from cobrador.core.bulk import update_rows
from cobrador.gateways import kobana
from cobrador.gateways.base import ChargeResult
from cobrador.gateways.registry import gateway_for
from cobrador.payments import charging
from cobrador.payments import services as payments
from cobrador.payments.models import Payment

logger = logging.getLogger(__name__)

BATCH_SIZE = 200  # callbacks claimed at once
# Callbacks per transaction: on SQLite from FIRST_SLICE to MAX_SLICE, sized to take TRANSACTION_BUDGET;
# on PostgreSQL always MAX_SLICE (see process_callbacks).
FIRST_SLICE, MAX_SLICE = 4, 50
TRANSACTION_BUDGET = 0.02  # seconds
LEASE = timedelta(minutes=5)
# A `received` row older than this was missed by its wake-up (a lost task): the sweep takes it.
STALE_RECEIVED = timedelta(minutes=2)
# Delays before retry 1, 2, ... of a failed callback; after the last it stays failed.
RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=15), timedelta(hours=1),
                timedelta(hours=4), timedelta(hours=12))
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


@dataclass
class Processed:
    """What a run did: callbacks counted by their new status, and when the earliest of those that failed
    is due again (None: none will be retried)."""

    counts: dict[str, int] = field(default_factory=dict)
    retry_at: datetime | None = None

    def add(self, other: "Processed") -> None:
        for key, n in other.counts.items():
            self.counts[key] = self.counts.get(key, 0) + n
        self.retry_at = min((t for t in (self.retry_at, other.retry_at) if t is not None), default=None)


class CallbackNotApplicable(Exception):
    """Raised before anything is written: the callback fails alone and is retried with backoff."""


class PaymentNotFound(CallbackNotApplicable):
    """The callback names a charge we have no payment for (yet)."""


class Unparseable(CallbackNotApplicable):
    pass


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


def _parse(callback: GatewayCallback, gateways: dict):
    """The callback's CallbackEvent (None: a type not handled), or the exception parsing raised."""
    try:
        if callback.gateway_id not in gateways:
            gateways[callback.gateway_id] = gateway_for(callback.gateway)
        return gateways[callback.gateway_id].parse_callback(headers=callback.headers, body=bytes(callback.body))
    except Exception as exc:  # noqa: BLE001 - recorded on the row
        return exc


def _payments_for(callbacks: list[GatewayCallback], events: dict) -> dict[int, int]:
    """callback pk -> payment pk, in two queries for a whole slice: by our reference (the public id the
    provider echoes), else by the provider's charge id; always within the callback's organization and
    provider."""
    wanted = [(c, events[c.pk]) for c in callbacks
              if events[c.pk] is not None and not isinstance(events[c.pk], Exception) and events[c.pk].status]
    if not wanted:
        return {}
    scope = Q(organization_id__in={c.organization_id for c, _ in wanted}, provider__in={c.provider for c, _ in wanted})
    by_reference = {(o, pr, ref): pk for pk, o, pr, ref in Payment.objects.filter(
        scope, public_id__in={e.reference for _, e in wanted if e.reference}).values_list(
        "pk", "organization_id", "provider", "public_id")}
    by_charge = {(o, pr, ch): pk for pk, o, pr, ch in Payment.objects.filter(
        scope, provider_charge_id__in={e.provider_charge_id for _, e in wanted if e.provider_charge_id}).values_list(
        "pk", "organization_id", "provider", "provider_charge_id")}
    found = {}
    for callback, event in wanted:
        key = (callback.organization_id, callback.provider)
        pk = by_reference.get((*key, event.reference)) or by_charge.get((*key, event.provider_charge_id))
        if pk is not None:
            found[callback.pk] = pk
    return found


def handle_callback(callback: GatewayCallback, event, payment: Payment | None, effects: payments.Effects) -> str:
    """Apply one parsed callback to its payment (locked, inside the caller's transaction); returns the
    callback's final status."""
    if isinstance(event, Exception):
        raise Unparseable(f"could not parse the callback: {type(event).__name__}: {event}") from event
    if event is None:
        effects.changes.append({"note": "event type not handled"})
        return "ignored"
    if event.status is None:
        effects.changes.append({"note": f"{event.event_type} changes no payment"})
        return "processed"
    if payment is None:
        raise PaymentNotFound(f"no payment for charge {event.provider_charge_id or '-'} "
                              f"(reference {event.reference or '-'}) yet")
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
    obj = (event.raw or {}).get("object") or {}
    resource = (obj.get("bank_billet") or obj.get("pix") or obj) if "operation" in obj else obj
    if not isinstance(resource, dict) or not resource:
        return None
    return (kobana.billet_result if event.event_type.startswith("bank_billet.") else kobana.pix_result)(resource)


def process_callbacks(ids: list[int]) -> Processed:
    """Process claimed callbacks in short transactions. Returns counts by status and the earliest retry.

    On PostgreSQL a slice is MAX_SLICE callbacks. On SQLite the callback view and this share one write
    lock, and SQLite's busy handler is not fair (a writer that backs off keeps finding the lock taken
    again), so there, while callbacks keep arriving, each transaction is kept near TRANSACTION_BUDGET by
    sizing the next slice from the last one's duration (never under FIRST_SLICE), and the worker then
    pauses as long as it held the lock: inbound callbacks get at least half of it. When none arrived
    during the last slice, nobody is waiting: the next slice is MAX_SLICE, without a pause."""
    callbacks = list(GatewayCallback.objects.filter(pk__in=ids, status="processing")
                     .select_related("gateway").order_by("pk"))
    processed = Processed()
    if any(c.provider in INBOUND for c in callbacks):
        processed.add(_process_inbound([c for c in callbacks if c.provider in INBOUND]))
        callbacks = [c for c in callbacks if c.provider not in INBOUND]
    gateways: dict = {}
    events = {callback.pk: _parse(callback, gateways) for callback in callbacks}
    sqlite = connection.vendor == "sqlite"
    size, position = (FIRST_SLICE if sqlite else MAX_SLICE), 0
    while position < len(callbacks):
        piece = callbacks[position:position + size]
        position += len(piece)
        started, slice_at = time.monotonic(), clock.now()
        processed.add(_apply_slice(piece, lambda some: _apply(some, events)))
        if sqlite and position < len(callbacks):
            held = time.monotonic() - started
            if GatewayCallback.objects.filter(status="received", received_at__gte=slice_at).exists():
                size = max(FIRST_SLICE, min(MAX_SLICE, int(len(piece) * TRANSACTION_BUDGET / max(held, 0.001))))
                time.sleep(min(held, TRANSACTION_BUDGET * 2))
            else:
                size = MAX_SLICE
    return processed


CALLBACK_STATE_FIELDS = ["status", "error", "next_attempt_at", "processed_at", "changes"]


def _failed(callback: GatewayCallback, error: str, now: datetime) -> None:
    callback.status, callback.error, callback.changes = "failed", error[:4000], []
    callback.next_attempt_at = now + RETRY_DELAYS[callback.attempts - 1] if callback.attempts < MAX_ATTEMPTS else None


def _apply(callbacks: list[GatewayCallback], events: dict) -> None:
    """Apply `callbacks` in one transaction, rows written in bulk. A callback whose payment is not
    known yet (or whose body cannot be parsed) fails alone; any other error rolls the whole
    transaction back and is raised."""
    now = clock.now()
    effects = payments.Effects(bulk=True)
    with transaction.atomic():
        payment_of = _payments_for(callbacks, events)
        locked = {p.pk: p for p in payments.lock_payments(set(payment_of.values()))}
        for callback in callbacks:
            first_change = len(effects.changes)
            try:
                status = handle_callback(callback, events[callback.pk], locked.get(payment_of.get(callback.pk)),
                                         effects)
            except CallbackNotApplicable as exc:  # nothing was written for it
                _failed(callback, str(exc), now)
                continue
            callback.status, callback.error, callback.next_attempt_at = status, "", None
            callback.processed_at = now
            callback.changes = effects.changes[first_change:]
        effects.write()
        update_rows(list(callbacks), CALLBACK_STATE_FIELDS)
        effects.flush()
    if effects.paid_invoice_ids:
        charging.cancel_outstanding_payments(effects.paid_invoice_ids)


def _process_inbound(callbacks: list[GatewayCallback]) -> Processed:
    """Callbacks of a registered inbound provider (callbacks.providers), MAX_SLICE per transaction; a
    slice that raises goes through again one callback at a time, so only the broken one fails."""
    processed = Processed()
    for position in range(0, len(callbacks), MAX_SLICE):
        processed.add(_apply_slice(callbacks[position:position + MAX_SLICE], _apply_inbound))
    return processed


def _apply_slice(piece: list[GatewayCallback], apply) -> Processed:
    """`apply(piece)` in one transaction; when it raises, each callback again alone, so only the broken
    one fails (recorded on its row, retried with backoff). Returns the slice's counts and earliest retry."""
    try:
        apply(piece)
    except Exception:  # noqa: BLE001 - one of them is broken: find which, alone
        for callback in piece:
            try:
                apply([callback])
            except Exception as exc:  # noqa: BLE001 - recorded on the row, retried with backoff
                logger.warning("callback %s failed: %s", callback.public_id, exc,
                               exc_info=(type(exc), exc, exc.__traceback__))
                with transaction.atomic():
                    _failed(callback, "".join(traceback.format_exception(exc, limit=6)), clock.now())
                    update_rows([callback], CALLBACK_STATE_FIELDS)
    processed = Processed()
    for callback in piece:
        processed.counts[callback.status] = processed.counts.get(callback.status, 0) + 1
    processed.retry_at = min((c.next_attempt_at for c in piece if c.status == "failed" and c.next_attempt_at),
                             default=None)
    return processed


def _apply_inbound(callbacks: list[GatewayCallback]) -> None:
    now = clock.now()
    with transaction.atomic():
        outcomes: dict = {}
        for name in {c.provider for c in callbacks}:
            outcomes.update(INBOUND[name].apply([c for c in callbacks if c.provider == name]))
        for callback in callbacks:
            outcome = outcomes[callback.pk]
            if isinstance(outcome, Exception):
                _failed(callback, str(outcome), now)
                continue
            callback.status, callback.changes = outcome
            callback.error, callback.next_attempt_at, callback.processed_at = "", None, now
        update_rows(list(callbacks), CALLBACK_STATE_FIELDS)


def process_received(*, max_batches: int = 50) -> Processed:
    """Process `received` callbacks until none are left (or max_batches)."""
    processed = Processed()
    for _ in range(max_batches):
        ids = _claim(Q(status="received"), now=clock.now())
        if not ids:
            break
        processed.add(process_callbacks(ids))
    return processed


def due_for_retry(as_of: datetime) -> Q:
    return (Q(status="failed", next_attempt_at__lte=as_of)
            | Q(status="processing", next_attempt_at__lte=as_of)  # a worker died holding them
            | Q(status="received", received_at__lte=as_of - STALE_RECEIVED))  # their wake-up was lost


def retry_due(*, as_of: datetime | None = None) -> Processed:
    """Rerun failed callbacks whose backoff has passed, and stuck ones."""
    as_of = as_of or clock.now()
    processed = Processed()
    while not stopping.requested():
        ids = _claim(due_for_retry(as_of), now=as_of)
        if not ids:
            return processed
        processed.add(process_callbacks(ids))
    return processed

