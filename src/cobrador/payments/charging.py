"""Making charges, refunds and cancellations at the provider: three steps, never one transaction.

1. `start_charge` writes the Payment `processing` with its idempotency key, and commits;
2. the gateway is called outside any transaction (concurrently for a batch, in a bounded thread pool);
3. the answer is recorded by `apply_result` in a new transaction.

A crash between 1 and 3 leaves a `processing` row: reconciliation asks the provider about it by its
reference and idempotency key (`find_charge`) and never charges again. The partial unique index on
Payment makes a second in-flight payment of one invoice impossible, whoever tries.
"""

import logging
import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef, Q

from cobrador.core import clock, stopping
from cobrador.core.bulk import insert_objects
from cobrador.core.outbox import wake_outbox_after_commit
from cobrador.customers.models import PaymentMethod
from cobrador.gateways.base import ChargeRequest, ChargeResult, Customer, GatewayError
from cobrador.gateways.registry import config_for_method, gateway_for
from cobrador.invoicing.models import Invoice
from cobrador.payments import services
from cobrador.payments.models import ChargeQueueEntry, Payment, PaymentRefund

logger = logging.getLogger(__name__)

CONCURRENCY = int(os.environ.get("COBRADOR_CHARGING_CONCURRENCY", "8"))
BATCH_SIZE = int(os.environ.get("COBRADOR_CHARGING_BATCH_SIZE", "200"))


# --- calling the gateway ------------------------------------------------------------------------------


def _gateway(payment: Payment, cache: dict):
    if payment.gateway_id not in cache:
        cache[payment.gateway_id] = gateway_for(payment.gateway)
    return cache[payment.gateway_id]


def charge_request(payment: Payment) -> ChargeRequest:
    invoice, account = payment.invoice, payment.account
    now = clock.now()
    return ChargeRequest(
        idempotency_key=payment.idempotency_key,
        reference=payment.public_id,
        amount=payment.amount,
        currency=payment.currency,
        method=payment.method,
        description=f"Invoice {invoice.number}",
        customer=Customer(name=account.name, email=account.email, document=account.document,
                          document_type=account.document_type, address=account.address or {},
                          reference=account.public_id),
        card_token=payment.payment_method.gateway_token if payment.payment_method_id else "",
        due_date=services.boleto_due_date(invoice, now.date()) if payment.method == "bank_slip" else None,
        expires_at=services.pix_expiry(invoice, now) if payment.method == "pix" else None,
        metadata={"invoice": invoice.public_id, "payment": payment.public_id},
    )


def send_charge(payment: Payment, *, gateway=None) -> ChargeResult:
    """Call the provider for `payment`. Never raises: a refusal before anything happened is a failed
    payment, and anything else unexpected is an unknown outcome (asked about later, never retried)."""
    gateway = gateway or gateway_for(payment.gateway)
    request = charge_request(payment)
    try:
        if payment.method == "card":
            return gateway.charge_card(request)
        if payment.method == "bank_slip":
            return gateway.issue_boleto(request)
        return gateway.issue_pix(request)
    except Exception as exc:  # noqa: BLE001 - every outcome is an answer
        return _answer_for(payment, exc)


def _answer_for(payment: Payment, exc: Exception) -> ChargeResult:
    if isinstance(exc, GatewayError):
        return ChargeResult(status="failed", failure_code="provider_refused", failure_message=str(exc)[:500],
                            decline_class="soft")
    # The request may have left: only the provider knows.
    logger.warning("charge %s: %s; outcome unknown", payment.public_id, type(exc).__name__,
                   exc_info=(type(exc), exc, exc.__traceback__))
    return ChargeResult(status="unknown", failure_code="exception",
                        failure_message=f"{type(exc).__name__} while calling the provider")


class StartedCalls:
    """Calls started in the gateway thread pool: calling it waits for their results (in order), and
    `done()` says whether that would wait."""

    def __init__(self, results: list, futures=(), then: Callable[[list], list] | None = None):
        self.results, self.futures, self.then = results, list(futures), then

    def done(self) -> bool:
        return all(future.done() for future in self.futures)

    def __call__(self) -> list:
        for future in self.futures:
            future.result()
        return self.then(self.results) if self.then is not None else self.results


def start_charges(payments: list[Payment], gateways: dict) -> StartedCalls:
    """Start the provider calls for `payments` (gateways cached by config id in `gateways`); returns
    their StartedCalls, answers in order. A gateway that takes a batch (`charge_many`: the
    sandbox) gets its payments in one call, here and now; the others' calls run in the thread pool."""
    results: list = [None] * len(payments)
    batches: dict[int, list[int]] = {}
    singles: list[int] = []
    for i, payment in enumerate(payments):
        if hasattr(_gateway(payment, gateways), "charge_many"):
            batches.setdefault(payment.gateway_id, []).append(i)
        else:
            singles.append(i)
    wait_for_singles = start_calls(lambda i: send_charge(payments[i], gateway=gateways[payments[i].gateway_id]),
                                   singles)
    for indexes in batches.values():
        batch = [payments[i] for i in indexes]
        try:
            answers = gateways[batch[0].gateway_id].charge_many([charge_request(p) for p in batch])
        except Exception as exc:  # noqa: BLE001 - every outcome is an answer
            answers = [exc] * len(batch)
        for i, payment, answer in zip(indexes, batch, answers, strict=True):
            results[i] = _answer_for(payment, answer) if isinstance(answer, Exception) else answer

    def with_singles(results: list) -> list[ChargeResult]:
        for i, result in zip(singles, wait_for_singles(), strict=True):
            results[i] = result
        return results
    return StartedCalls(results, wait_for_singles.futures, then=with_singles)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _call_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(CONCURRENCY, thread_name_prefix="gateway-call")
        return _pool


def start_calls(function: Callable, items: list) -> StartedCalls:
    """Start `function` over `items` in the gateway thread pool; returns their StartedCalls, results in
    order. Inside an atomic block (tests) other threads could not see this transaction's
    rows, so the calls run here, at once, in order."""
    if len(items) <= 1 or connection.in_atomic_block:
        return StartedCalls([function(item) for item in items])
    results: list = [None] * len(items)
    pending = iter(range(len(items)))
    lock = threading.Lock()

    def drain():
        # The sandbox keeps its charges in our database: each thread gives back what it opened, once per
        # batch (a new connection for every call cost more than the call: 2-4x on PostgreSQL).
        try:
            while True:
                with lock:
                    i = next(pending, None)
                if i is None:
                    return
                results[i] = function(items[i])
        finally:
            connections.close_all()

    return StartedCalls(results, [_call_pool().submit(drain) for _ in range(min(CONCURRENCY, len(items)))])


def call_concurrently(function: Callable, items: list) -> list:
    """`function` over `items` in the gateway thread pool, results in order."""
    return start_calls(function, items)()


# --- recording answers --------------------------------------------------------------------------------


def record_results(results: Iterable[tuple[int, ChargeResult]], *, via: str = "charge",
                   before_commit: Callable[[services.Effects], None] | None = None,
                   known: dict[int, Payment] | None = None) -> services.Effects:
    """Record provider answers for payments (by pk) in one transaction, then cancel what paid invoices
    no longer need. `before_commit(effects)` runs in that transaction after the answers are applied
    and before the events are written (dunning records its attempts' outcomes there). `known`: the
    caller's instances of the payments, as services.lock_payments takes them."""
    results = list(results)
    effects = services.Effects(bulk=True)
    with transaction.atomic():
        by_pk = {p.pk: p for p in services.lock_payments((pk for pk, _ in results), known=known)}
        for pk, result in results:
            services.apply_result(payment=by_pk[pk], result=result, effects=effects, via=via)
        effects.write()
        if before_commit is not None:
            before_commit(effects)
        effects.flush()
    if effects.paid_invoice_ids:
        cancel_outstanding_payments(effects.paid_invoice_ids)
    return effects


def charge_invoice(*, organization, invoice: Invoice, payment_method: PaymentMethod | None = None,
                   source: str = "manual", attempt_number: int = 0) -> Payment:
    """Charge `invoice` now (its amount due, with `payment_method` or the account's default) and return
    the payment with its outcome. Conflict (409) while another payment of the invoice is in flight.
    Dunning charges retries through here too (source "dunning", attempt_number k)."""
    with transaction.atomic():
        payment = services.start_charge(organization=organization, invoice=invoice, payment_method=payment_method,
                                        source=source, attempt_number=attempt_number)
    result = send_charge(payment)
    record_results([(payment.pk, result)])
    return Payment.objects.select_related("invoice", "account", "payment_method").get(pk=payment.pk)


# --- charging open invoices in batches -----------------------------------------------------------------


def uncharged_open_invoices(*, organization_id: int | None = None):
    """Open invoices to collect by charging, with something due, never charged, with a method to charge:
    the invoice's own, else its subscription's, else the account's default (see `methods_to_charge`)."""
    active = PaymentMethod.objects.filter(status="active")
    invoices = Invoice.objects.filter(status="open", amount_due__gt=0, collection_method="charge").exclude(
        Exists(Payment.objects.filter(invoice=OuterRef("pk")))).filter(
        Exists(active.filter(account=OuterRef("account_id"), is_default=True))
        | Exists(active.filter(pk=OuterRef("payment_method_id")))
        | Exists(active.filter(pk=OuterRef("subscription__payment_method_id"))))
    if organization_id is not None:
        invoices = invoices.filter(organization_id=organization_id)
    return invoices


def methods_to_charge(invoices: list[Invoice]) -> dict[int, PaymentMethod]:
    """The method each invoice is charged with (by invoice pk), in one query: the invoice's own when it
    is still active, else its subscription's, else the account's default."""
    chosen_ids = {i.payment_method_id for i in invoices} | {
        i.subscription.payment_method_id for i in invoices if i.subscription_id is not None}
    methods = PaymentMethod.objects.filter(status="active").filter(
        Q(pk__in=chosen_ids - {None}) | Q(account_id__in={i.account_id for i in invoices}, is_default=True))
    by_pk, defaults = {}, {}
    for method in methods:
        by_pk[method.pk] = method
        if method.is_default:
            defaults[method.account_id] = method
    chosen = {}
    for invoice in invoices:
        candidates = [invoice.payment_method_id,
                      invoice.subscription.payment_method_id if invoice.subscription_id is not None else None]
        method = next((by_pk[pk] for pk in candidates if pk in by_pk and by_pk[pk].account_id == invoice.account_id),
                      defaults.get(invoice.account_id))
        if method is not None:
            chosen[invoice.pk] = method
    return chosen


def _create_first_payments(invoice_ids: list[int], counts: dict) -> list[Payment]:
    """One transaction: lock the invoices, re-check them (another worker may have charged them since),
    and write one `processing` payment each."""
    now = clock.now()
    configs: dict[tuple[int, str], object] = {}
    with transaction.atomic():
        locked = list(Invoice.objects.select_for_update().filter(pk__in=invoice_ids).order_by("pk")
                      .values_list("pk", flat=True))
        # A fresh query after the locks: on PostgreSQL it sees what other workers committed meanwhile.
        # With what the payments' events carry: their answers are recorded on these instances.
        invoices = list(uncharged_open_invoices().filter(pk__in=locked)
                        .select_related("organization", "account", "subscription", "coupon", "payment_method")
                        .prefetch_related("lines"))
        methods = methods_to_charge(invoices)
        payments = []
        for invoice in invoices:
            payment_method = methods[invoice.pk]
            key = (invoice.organization_id, payment_method.type)
            if key not in configs:
                try:
                    configs[key] = config_for_method(invoice.organization, payment_method.type)
                except Exception as exc:  # noqa: BLE001 - e.g. a live organization without a gateway
                    logger.warning("no gateway for %s of %s: %s", payment_method.type, invoice.organization, exc)
                    configs[key] = None
            if configs[key] is None:
                counts["no_gateway"] = counts.get("no_gateway", 0) + 1
                continue
            payments.append(services.new_payment(invoice=invoice, payment_method=payment_method,
                                                 config=configs[key], source="invoice", attempt_number=0, now=now))
        insert_objects(payments, returning_ids=True)
    if len(invoices) < len(invoice_ids):  # charged meanwhile by another worker or by hand
        counts["skipped"] = counts.get("skipped", 0) + len(invoice_ids) - len(invoices)
    for payment in payments:
        payment.account = payment.invoice.account
    return payments


def charge_open_invoices(*, organization_id: int | None = None, batch_size: int = BATCH_SIZE,
                         max_batches: int | None = None) -> dict:
    """Charge every open, never-charged invoice with its method (see `methods_to_charge`), a batch at a
    time (see `_charge_in_pipeline`). Safe to run in several workers at once. Returns counts by outcome.
    The `invoice-charging` job's safety net: the main path is the charge queue (`charge_queued`)."""
    counts: dict[str, int] = {}
    after_pk = 0
    due = uncharged_open_invoices(organization_id=organization_id)

    def next_batch() -> list[Payment] | None:
        nonlocal after_pk
        ids = list(due.filter(pk__gt=after_pk).order_by("pk").values_list("pk", flat=True)[:batch_size])
        if not ids:
            return None
        after_pk = ids[-1]
        return _create_first_payments(ids, counts)

    _charge_in_pipeline(next_batch, counts, max_batches=max_batches)
    return counts


def charge_queued(*, max_batches: int | None = None) -> int:
    """The charge drainer (core/outbox.py runs it in every worker, woken by the NOTIFY of the commit
    that queued the invoices): claim queued invoices, up to BATCH_SIZE a batch, and charge them. The
    claim deletes the queue rows in the transaction that writes the payments, so an entry is charged
    once whichever worker takes it, and a worker killed before that commit leaves it queued. Returns
    how many invoices it took."""
    counts: dict[str, int] = {}
    taken = 0

    def next_batch() -> list[Payment] | None:
        nonlocal taken
        if connection.vendor == "sqlite" and not ChargeQueueEntry.objects.exists():
            return None  # an idle poll is a read: SQLite's write lock only when something is queued
        payments, invoice_ids = _claim_queued(counts)
        taken += len(invoice_ids)
        return payments if invoice_ids else None

    _charge_in_pipeline(next_batch, counts, max_batches=max_batches)
    return taken


def _claim_queued(counts: dict) -> tuple[list[Payment], list[int]]:
    with transaction.atomic():
        entries = ChargeQueueEntry.objects.order_by("pk")
        if connection.vendor == "postgresql":
            entries = entries.select_for_update(skip_locked=True)
        claimed, invoice_ids = [], []
        for pk, ids in entries.values_list("pk", "invoice_ids")[:BATCH_SIZE]:
            if invoice_ids and len(invoice_ids) + len(ids) > BATCH_SIZE:
                break
            claimed.append(pk)
            invoice_ids.extend(ids)
        if not claimed:
            return [], []
        ChargeQueueEntry.objects.filter(pk__in=claimed).delete()
        pks = list(Invoice.objects.filter(public_id__in=invoice_ids).values_list("pk", flat=True))
        return _create_first_payments(pks, counts), invoice_ids


def queue_charges(invoice_ids: list[str]) -> None:
    """Queue these invoices (public ids) for the charge drainer, inside the caller's transaction; the drainers
    wake when it commits."""
    now = clock.now()
    ChargeQueueEntry.objects.bulk_create([ChargeQueueEntry(invoice_ids=invoice_ids[i:i + BATCH_SIZE], created_at=now)
                                          for i in range(0, len(invoice_ids), BATCH_SIZE)])
    wake_outbox_after_commit()


def _charge_in_pipeline(next_batch: Callable[[], list[Payment] | None], counts: dict,
                        max_batches: int | None = None) -> None:
    """Charge the batches `next_batch` writes (its payments, `processing` and committed; None when
    there are no more) until there are none: the gateway calls of a batch run concurrently, one
    transaction records their answers, and the calls of one batch overlap the writing of the next
    batch and the recording of the one before. Answers already in (the sandbox answers a batch at
    once) are recorded before the next batch is written, so no customer waits for that."""
    gateways: dict = {}
    batches = 0
    in_flight = None  # (payments, wait for their results) of the batch whose calls are running
    while True:
        if in_flight is not None and in_flight[1].done():
            _record_batch(*in_flight, counts)
            in_flight = None
        payments = None
        if (max_batches is None or batches < max_batches) and not stopping.requested():
            payments = next_batch()
        started = None
        if payments is not None:
            batches += 1
            started = (payments, start_charges(payments, gateways))
        if in_flight is not None:
            _record_batch(*in_flight, counts)
        in_flight = started
        if in_flight is None:
            return


def _record_batch(payments: list[Payment], results_of: Callable[[], list], counts: dict) -> None:
    results = results_of()
    try:
        record_results([(p.pk, r) for p, r in zip(payments, results, strict=True)],
                       known={p.pk: p for p in payments})
    except Exception:
        # The payments stay `processing`; reconciliation asks the provider about them.
        logger.exception("recording %d charge results failed; reconciliation will settle them", len(payments))
        counts["unrecorded"] = counts.get("unrecorded", 0) + len(payments)
        return
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1


# --- cancellations and refunds -------------------------------------------------------------------------


def cancel_outstanding_payments(invoice_ids: Iterable[int]) -> int:
    """Cancel the pending boleto/PIX payments of invoices that no longer need them (paid or void), at the
    provider and then here. Idempotent; a cancel that fails is retried by the reconciliation sweep.
    Returns how many were canceled."""
    pending = list(Payment.objects.filter(invoice_id__in=list(invoice_ids), status="pending")
                   .exclude(invoice__status__in=services.PAYABLE_INVOICE_STATUSES)
                   .select_related("gateway"))
    return sum(cancel_payment(payment) for payment in pending)


def cancel_payment(payment: Payment) -> bool:
    if not payment.provider_charge_id:
        return False
    try:
        result = gateway_for(payment.gateway).cancel_charge(
            method=payment.method, provider_charge_id=payment.provider_charge_id,
            idempotency_key=f"{payment.idempotency_key}-cancel")
    except Exception as exc:  # noqa: BLE001 - logged; the sweep tries again
        logger.warning("canceling %s at %s failed: %s", payment.public_id, payment.provider, exc)
        return False
    # Only a cancellation, or news that it was paid after all, is recorded from a cancel answer.
    if result.status not in ("canceled", "succeeded", "refunded"):
        return False
    effects = record_results([(payment.pk, result)], via="cancel")
    return any(c.get("status") == ["pending", "canceled"] for c in effects.changes)


def refund_payment(*, organization, payment: Payment, amount: int | None, reason: str = "") -> PaymentRefund:
    """Refund `amount` (default: what is left) of a succeeded payment. Partial refunds add up."""
    with transaction.atomic():
        refund = services.start_refund(organization=organization, payment=payment, amount=amount, reason=reason)
    return send_refund(refund)


def send_refund(refund: PaymentRefund) -> PaymentRefund:
    payment = Payment.objects.select_related("gateway").get(pk=refund.payment_id)
    result, error = None, ""
    try:
        result = gateway_for(payment.gateway).refund(
            method=payment.method, provider_charge_id=payment.provider_charge_id, amount=refund.amount,
            idempotency_key=refund.idempotency_key)
        if result.status == "failed":
            result, error = None, result.failure_message or "the provider refused the refund"
    except GatewayError as exc:
        error = str(exc) or "the provider refused the refund"
    except Exception as exc:  # noqa: BLE001 - may have happened: ask again with the same key
        logger.warning("refund %s: %s; outcome unknown", refund.public_id, type(exc).__name__)
        result = ChargeResult(status="unknown")
    with transaction.atomic():
        refund = PaymentRefund.objects.select_for_update().get(pk=refund.pk)
        return services.apply_refund_result(refund=refund, result=result, error=error)
