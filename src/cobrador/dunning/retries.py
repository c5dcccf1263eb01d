"""Running dunning attempts in batches: claim, walk the methods, record, schedule the next.

An attempt walks its methods in order. A card is charged and on failure the walk goes on; a boleto or
PIX is issued (a pending payment paid later by callback) and ends the attempt; a method the account
cannot use (no usable card, no CPF/CNPJ for a boleto) is recorded `skipped`, and one no gateway serves
`error`, and the walk goes on. A card hard-declined for an invoice is never charged for it again.

A batch of attempts runs in rounds, one method per attempt per round, in three steps per round:

1. one transaction: lock the schedules (still ours?) and the invoices (still payable, nothing in
   flight?), write the round's Payment rows (`processing`) and RecoveryRecords in bulk;
2. the gateway calls, outside any transaction, concurrently (payments.charging.start_charges);
3. one transaction: payments.charging.record_results applies the answers (payment.* and invoice.*
   events), and in the same transaction the records get their outcomes and ended attempts get their
   next retry scheduled (dunning.retry_attempted, dunning.exhausted).

Exactly once: a schedule is claimed (`running`, a lease and a token) before anything is charged, so a
second worker or a rerun cannot take the same attempt; RecoveryRecord is unique per (invoice, attempt,
method), so an attempt taken over after its lease ran out (a worker died) resumes after the methods it
already tried. A crash after a gateway call leaves a `processing` Payment that payments' reconciliation
settles; its record follows the payment's outcome (sink.py).
"""

import logging
import os
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects, update_rows
from cobrador.core.ids import random_token
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.dunning import services
from cobrador.dunning.models import DunningInvoice, RecoveryRecord
from cobrador.events.services import EventDraft, record_events
from cobrador.gateways.base import ChargeResult
from cobrador.gateways.registry import config_for_method
from cobrador.invoicing.models import Invoice
from cobrador.organizations.services import attach_organizations
from cobrador.payments import charging
from cobrador.payments import services as payments
from cobrador.payments.models import Payment

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)
# An attempt that finds another payment of its invoice in flight waits this long.
DEFER = timedelta(hours=1)
BATCH_SIZE = int(os.environ.get("COBRADOR_DUNNING_BATCH_SIZE", "500"))
DOCUMENT_METHODS = ("bank_slip", "pix")
DOCUMENT_FIELDS = ("provider_charge_id", "boleto_url", "boleto_line", "boleto_barcode", "pix_copy_paste",
                   "pix_qr_code_url", "expires_at")


@dataclass
class Attempt:
    dunning: DunningInvoice
    number: int
    methods: list[str]
    anchor: datetime  # the attempt's time: the next retry is due counting from here
    token: str
    payment_method: PaymentMethod | None = None  # a retry triggered by a newly saved method uses it
    records: list[RecoveryRecord] = field(default_factory=list)
    ended: bool = False
    lost: bool = False  # the schedule was closed or taken over meanwhile: leave it alone
    deferred: bool = False  # another payment of the invoice is in flight: try again later
    closed_as: str = ""  # the invoice was paid or voided meanwhile: "recovered" | "canceled"
    was_exhausted: bool = False

    def tried(self) -> set[str]:
        return {r.method for r in self.records}

    def next_method(self) -> str | None:
        tried = self.tried()
        return next((m for m in self.methods if m not in tried), None)


# --- claiming -----------------------------------------------------------------------------------


def due_schedules(as_of: datetime, now: datetime):
    """Attempts due at `as_of`, plus running ones whose worker's lease ran out."""
    return DunningInvoice.objects.filter(Q(status="scheduled", next_attempt_at__lte=as_of)
                                         | Q(status="running", lease_until__lte=now))


def claim_due(*, as_of: datetime, limit: int = BATCH_SIZE) -> tuple[list[int], str]:
    """Claim up to `limit` due attempts of organizations with automatic retries on."""
    now = clock.now()
    token = random_token(16)
    with transaction.atomic():
        due = (due_schedules(as_of, now).filter(organization__dunning_config__auto_retry_enabled=True)
               .order_by("next_attempt_at", "pk"))
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True, of=("self",))
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            DunningInvoice.objects.filter(pk__in=ids).update(status="running", lease_until=now + LEASE,
                                                             lease_token=token, updated_at=now)
    return ids, token


def claim_for_payment_method(payment_method: PaymentMethod) -> tuple[list[int], str, set[int]]:
    """Claim every scheduled or exhausted attempt of the method's account whose invoice is still open."""
    now = clock.now()
    token = random_token(16)
    with transaction.atomic():
        rows = DunningInvoice.objects.filter(account_id=payment_method.account_id,
                                             status__in=("scheduled", "exhausted"), invoice__status="open")
        if connection.vendor == "postgresql":
            rows = rows.select_for_update(skip_locked=True, of=("self",))
        claimed = dict(rows.values_list("pk", "status"))
        if claimed:
            DunningInvoice.objects.filter(pk__in=list(claimed)).update(status="running", lease_until=now + LEASE,
                                                                       lease_token=token, updated_at=now)
    return list(claimed), token, {pk for pk, status in claimed.items() if status == "exhausted"}


# --- running attempts ---------------------------------------------------------------------------


def run_attempts(ids: list[int], *, token: str, anchor: datetime, payment_method: PaymentMethod | None = None,
                 was_exhausted: set[int] = frozenset()) -> Counter:
    """Run the claimed attempts `ids` to their end. Returns counts by record outcome and by what
    happened to the schedules."""
    counts: Counter = Counter()
    # The invoices with what their events carry: each round's payments are recorded on these instances.
    rows = list(DunningInvoice.objects.filter(pk__in=ids, status="running", lease_token=token)
                .select_related("account", "invoice__subscription", "invoice__coupon")
                .prefetch_related("invoice__lines").order_by("pk"))
    attach_organizations(rows)
    attempts = [Attempt(dunning=row, number=row.next_attempt_number, anchor=anchor, token=token,
                        methods=[payment_method.type] if payment_method else list(row.next_methods),
                        payment_method=payment_method, was_exhausted=row.pk in was_exhausted) for row in rows]
    if not attempts:
        return counts
    # An attempt taken over after a crash resumes after the methods it already tried.
    # (Sorted here: ordered by the primary key, PostgreSQL walked that whole index rather than probe
    # the unique (invoice, attempt, method) one.)
    done = defaultdict(list)
    for record in sorted(RecoveryRecord.objects.filter(
            invoice_id__in=[a.dunning.invoice_id for a in attempts],
            attempt_number__in={a.number for a in attempts}).select_related("invoice", "account", "payment"),
            key=lambda r: r.pk):
        done[(record.invoice_id, record.attempt_number)].append(record)
    for attempt in attempts:
        attempt.records = done.get((attempt.dunning.invoice_id, attempt.number), [])
        if any(r.outcome == "processing" for r in attempt.records):
            attempt.ended = True  # its call's answer was lost with the worker: reconciliation settles it
    _finish_now([a for a in attempts if a.ended], counts)
    on_file = _MethodsOnFile({a.dunning.account_id for a in attempts})
    gateways: dict = {}
    while walking := [a for a in attempts if not a.ended]:
        charged = _prepare_round(walking, on_file, counts)
        if not charged:
            continue
        results = charging.start_charges([payment for payment, _, _ in charged], gateways)()
        _record_round(charged, results, counts)
    return counts


class _MethodsOnFile:
    """The accounts' active payment methods (read once per batch) and the gateway serving each method."""

    def __init__(self, account_ids):
        self.cards = defaultdict(list)  # default first, then newest
        self.others = {}
        for pm in PaymentMethod.objects.filter(account_id__in=list(account_ids), status="active").order_by(
                "-is_default", "-created_at", "-pk"):
            if pm.type == "card":
                self.cards[pm.account_id].append(pm)
            else:
                self.others.setdefault((pm.account_id, pm.type), pm)
        self.configs: dict = {}

    def config(self, organization, method: str):
        key = (organization.pk, method)
        if key not in self.configs:
            try:
                self.configs[key] = config_for_method(organization, method)
            except Exception as exc:  # noqa: BLE001 - e.g. a live organization with no gateway for the method
                self.configs[key] = exc
        return self.configs[key]


def _lock_ours(attempts: list[Attempt], counts: Counter | None = None) -> None:
    """Lock the attempts' schedules; those closed or taken over meanwhile are marked lost."""
    state = {pk: (status, token, hard) for pk, status, token, hard in DunningInvoice.objects.select_for_update()
             .filter(pk__in=[a.dunning.pk for a in attempts]).order_by("pk")
             .values_list("pk", "status", "lease_token", "hard_declined_cards")}
    for attempt in attempts:
        status, token, hard = state.get(attempt.dunning.pk, (None, None, []))
        if status != "running" or token != attempt.token:
            if not attempt.lost and counts is not None:
                counts["lost"] += 1
            attempt.ended = attempt.lost = True
        else:
            attempt.dunning.status, attempt.dunning.hard_declined_cards = status, hard


def _prepare_round(attempts: list[Attempt], on_file: _MethodsOnFile,
                   counts: Counter) -> list[tuple[Payment, RecoveryRecord, Attempt]]:
    """Step 1: choose each attempt's next method and write its Payment and record (one transaction)."""
    now = clock.now()
    charged: list[tuple[Payment, RecoveryRecord, Attempt]] = []
    with transaction.atomic():
        _lock_ours(attempts, counts)
        attempts = [a for a in attempts if not a.lost]
        invoice_ids = [a.dunning.invoice_id for a in attempts]
        # Locked like payments.start_charge does, so a payment through the API waits for this one.
        current = {pk: (status, amount_due) for pk, status, amount_due in Invoice.objects.select_for_update()
                   .filter(pk__in=invoice_ids).order_by("pk").values_list("pk", "status", "amount_due")}
        in_flight = set(Payment.objects.filter(invoice_id__in=invoice_ids, status__in=payments.IN_FLIGHT)
                        .values_list("invoice_id", flat=True))
        skipped: list[RecoveryRecord] = []
        for attempt in attempts:
            invoice, account = attempt.dunning.invoice, attempt.dunning.account
            invoice.status, invoice.amount_due = current[invoice.pk]
            if invoice.status not in services.PAYABLE or invoice.amount_due <= 0:
                attempt.ended, attempt.closed_as = True, "recovered" if invoice.status == "paid" else "canceled"
                continue
            if invoice.pk in in_flight and not attempt.records:
                attempt.ended = attempt.deferred = True
                continue
            while (method := attempt.next_method()) is not None:
                record = build(
                    RecoveryRecord, organization_id=invoice.organization_id, account=account, invoice=invoice,
                    attempt_number=attempt.number, method=method, outcome="skipped", amount=invoice.amount_due,
                    currency=invoice.currency, attempted_at=now, created_at=now)
                attempt.records.append(record)
                if invoice.pk in in_flight:  # someone else's payment, mid-walk: stop here
                    record.outcome, record.decline_code = "error", "payment_in_flight"
                    record.message = "another payment of the invoice is in flight"
                    skipped.append(record)
                    attempt.ended = True
                    break
                payment_method, reason = _usable_method(attempt, method, account, on_file)
                if reason:
                    record.decline_code, record.message = reason
                    skipped.append(record)
                    continue
                config = on_file.config(attempt.dunning.organization, method)
                if isinstance(config, Exception):
                    record.outcome, record.decline_code, record.message = "error", "no_gateway", str(config)[:500]
                    skipped.append(record)
                    continue
                payment = payments.new_payment(invoice=invoice, payment_method=payment_method, config=config,
                                               source="dunning", attempt_number=attempt.number, now=now,
                                               method=method)
                payment.account = account
                record.outcome, record.provider, record.payment = "processing", config.provider, payment
                charged.append((payment, record, attempt))
                break
            else:
                attempt.ended = True
        insert_objects([p for p, _, _ in charged], returning_ids=True)
        for payment, record, _ in charged:
            record.payment = payment  # now with its pk
        insert_objects(skipped + [r for _, r, _ in charged], returning_ids=True)
        for record in skipped:
            counts[record.outcome] += 1
        update_rows(_finish([a for a in attempts if a.ended], counts, emit=_emit_now), ["next_retry_at"])
    return charged


def _usable_method(attempt: Attempt, method: str, account: BillingAccount, on_file: _MethodsOnFile):
    """(payment method or None, None) when the account can pay with `method`, else (None, (code, message))."""
    if method == "card":
        cards = on_file.cards.get(account.pk, [])
        usable = [pm for pm in cards if pm.pk not in attempt.dunning.hard_declined_cards]
        preferred = attempt.payment_method
        if preferred is not None and preferred.type == "card":
            usable = [pm for pm in usable if pm.pk == preferred.pk]
        if usable:
            return usable[0], None
        if cards:
            return None, ("card_hard_declined", "the account's cards were hard-declined for this invoice")
        return None, ("no_card", "the account has no card on file")
    if method == "bank_slip" and not account.document:
        return None, ("no_document", "a boleto needs the account's CPF or CNPJ")
    return on_file.others.get((account.pk, method)), None


OUTCOME_OF = {"succeeded": "succeeded", "failed": "failed", "canceled": "failed", "refunded": "succeeded"}


def _outcome(payment: Payment, result: ChargeResult) -> str:
    if result.status == "pending":
        return "issued" if payment.method in DOCUMENT_METHODS else "error"  # a card still processing
    return OUTCOME_OF.get(result.status, "error")  # unknown: reconciliation will tell


def _record_round(charged, results: list[ChargeResult], counts: Counter) -> None:
    """Step 3: record the answers and what they mean for each attempt, in one transaction."""
    issued: dict[int, int] = {}

    def record_outcomes(effects: payments.Effects) -> None:
        attempts, hard_declined = [], defaultdict(set)
        for (payment, record, attempt), result in zip(charged, results, strict=True):
            record.outcome = _outcome(payment, result)
            if record.outcome in ("failed", "error"):
                record.decline_code = (result.failure_code or ("pending_at_provider" if result.status == "pending"
                                                               else ""))[:64]
                record.message = (result.failure_message or "")[:500]
            counts[record.outcome] += 1
            if record.outcome == "failed" and payment.method == "card" and result.decline_class == "hard":
                hard_declined[attempt.dunning.pk].add(payment.payment_method_id)
            if record.outcome == "issued":
                issued[payment.invoice_id] = payment.pk
                for name in DOCUMENT_FIELDS:  # for the attempt's event (the saved row got them too)
                    setattr(payment, name, getattr(result, name) or getattr(payment, name))
            # A failed card (or a document that could not be issued) lets the walk go on.
            attempt.ended = record.outcome != "failed" or attempt.next_method() is None
            attempts.append(attempt)
        _lock_ours(attempts, counts)
        blocked = []
        for attempt in attempts:
            if attempt.dunning.pk in hard_declined and not attempt.lost:
                attempt.dunning.hard_declined_cards = sorted(set(attempt.dunning.hard_declined_cards)
                                                             | hard_declined[attempt.dunning.pk])
                blocked.append(attempt.dunning)
        update_rows(blocked, ["hard_declined_cards"])
        finished = _finish([a for a in attempts if a.ended], counts, emit=effects.emit)
        # This round's outcomes and the ended attempts' next retry, in one write.
        records = {id(r): r for r in [*(r for _, r, _ in charged), *finished]}
        update_rows(list(records.values()), ["outcome", "decline_code", "message", "next_retry_at"])
        _quiet_failures_of_ongoing_attempts(effects, charged)

    charging.record_results([(p.pk, r) for (p, _, _), r in zip(charged, results, strict=True)],
                            before_commit=record_outcomes, known={p.pk: p for p, _, _ in charged})
    if issued:
        _cancel_older_documents(issued)


def _quiet_failures_of_ongoing_attempts(effects: payments.Effects, charged) -> None:
    """A card failure whose attempt goes on (to a boleto or PIX) is told to the customer once the attempt
    ends, by its dunning.retry_attempted with the document to pay: a notice drafted from the failure
    itself could be sent before that document exists, and would stand for both."""
    quiet = {("payment.failed", p.public_id) for p, _, attempt in charged if not attempt.ended}
    quiet |= {("invoice.payment_failed", p.invoice.public_id) for p, _, attempt in charged if not attempt.ended}
    if quiet:
        effects.events = [replace(draft, notify=False) if (draft.type, draft.data.get("id")) in quiet else draft
                          for draft in effects.events]


def _cancel_older_documents(issued: dict[int, int]) -> None:
    """A newer boleto/PIX for an invoice cancels the older ones still pending (at the provider, then here)."""
    older = list(Payment.objects.filter(invoice_id__in=list(issued), status="pending", method__in=DOCUMENT_METHODS)
                 .exclude(pk__in=list(issued.values())).select_related("gateway"))
    if older:
        charging.call_concurrently(charging.cancel_payment, older)


# --- ending attempts ----------------------------------------------------------------------------


def _emit_now(organization, type_: str, data: dict) -> None:
    record_events([EventDraft(organization, type_, data)])


def _finish_now(attempts: list[Attempt], counts: Counter) -> None:
    if attempts:
        with transaction.atomic():
            _lock_ours(attempts, counts)
            update_rows(_finish(attempts, counts, emit=_emit_now), ["next_retry_at"])


def _finish(attempts: list[Attempt], counts: Counter, *, emit) -> list[RecoveryRecord]:
    """Ended attempts (schedules locked by the caller): schedule the next retry or exhaust, set the
    records' next_retry_at, and emit dunning.retry_attempted / dunning.exhausted. Returns the saved
    records whose next_retry_at was set, for the caller to write."""
    now = clock.now()
    attempts = [a for a in attempts if not a.lost]
    if not attempts:
        return []
    configs = services.configs_for(a.dunning.organization_id for a in attempts)
    rows, records = [], []
    for attempt in attempts:
        row = attempt.dunning
        rows.append(row)
        row.lease_until, row.lease_token, row.updated_at, row.error_count = None, "", now, 0
        if attempt.deferred:
            if attempt.was_exhausted:  # an immediate retry of an exhausted invoice: simply not now
                row.status, row.next_attempt_at = "exhausted", None
            else:
                row.status, row.next_attempt_at = "scheduled", now + DEFER
            counts["deferred_payment_in_flight"] += 1
            continue
        if attempt.closed_as:
            row.status, row.closed_at, row.next_attempt_at = attempt.closed_as, now, None
            counts[f"closed_{attempt.closed_as}"] += 1
            continue
        row.attempts_made, row.last_attempt_at = attempt.number, attempt.anchor
        row.next_attempt_number = attempt.number + 1
        outcome, _ = services.attempt_outcome(attempt.records)
        next_at = None
        if outcome == "succeeded":
            row.status, row.closed_at, row.next_attempt_at = "recovered", now, None
        else:
            config = configs[row.organization_id]
            next_at = services.retry_due_at(config, after_attempt=attempt.number, anchor=attempt.anchor)
            row.next_attempt_at = next_at
            row.next_methods = list(config.retry_payment_methods) if next_at else []
            row.status = "scheduled" if next_at else "exhausted"
        for record in attempt.records:
            record.next_retry_at = next_at
        records += attempt.records
        counts["attempts"] += 1
        if attempt.records:
            emit(row.organization, "dunning.retry_attempted", services.attempt_data(attempt.records, next_at))
        if row.status == "exhausted" and not attempt.was_exhausted:
            counts["exhausted"] += 1
            emit(row.organization, "dunning.exhausted", services.exhausted_data(row))
    update_rows(rows, ["status", "attempts_made", "last_attempt_at", "next_attempt_number", "next_attempt_at",
                       "next_methods", "closed_at", "lease_until", "lease_token", "updated_at", "error_count"])
    return [r for r in records if r.pk]


# --- a newly saved payment method ---------------------------------------------------------------


def retry_with_payment_method(*, payment_method_id: int) -> Counter:
    """A payment method was saved on an account with unpaid invoices in dunning: retry each now with it
    (the next attempt number; the one after is scheduled from now by the policy)."""
    payment_method = PaymentMethod.objects.select_related("organization__dunning_config").filter(
        pk=payment_method_id, status="active").first()
    if payment_method is None or not payment_method.organization.dunning_config.auto_retry_enabled:
        return Counter()
    ids, token, was_exhausted = claim_for_payment_method(payment_method)
    if not ids:
        return Counter()
    return run_attempts(ids, token=token, anchor=clock.now(), payment_method=payment_method,
                        was_exhausted=was_exhausted)
