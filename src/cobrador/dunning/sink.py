"""The dunning event sink: reacts to domain events inside the transaction that recorded them.

* invoice.payment_failed: the first failed charge of an open invoice opens its dunning;
* invoice.paid / invoice.voided: its dunning closes, and an account left with no overdue invoice is
  recovered and reactivated at once (within a callback's processing, a retry's recording, ...);
* payment_method.attached: an account with invoices in dunning gets an immediate retry with the new
  method (a task, enqueued in this transaction: it exists only if the attach commits), unless the
  method was given for one payment only (`single_use`);
* subscription.canceled: the pending retries of its invoices are canceled;
* payment.* of a dunning payment: a record left `processing` (its worker died after the gateway call)
  takes the outcome reconciliation found.
"""

from collections import defaultdict

from cobrador.core.bulk import update_rows
from cobrador.customers.models import PaymentMethod
from cobrador.dunning import services
from cobrador.dunning.models import DunningInvoice, RecoveryRecord
from cobrador.dunning.tasks import retry_with_payment_method
from cobrador.events.services import register_sink
from cobrador.invoicing.models import Invoice
from cobrador.organizations.models import DunningConfig
from cobrador.subscriptions.models import Subscription

PAYMENT_OUTCOMES = {"payment.succeeded": "succeeded", "payment.failed": "failed", "payment.pending": "issued",
                    "payment.refunded": "succeeded"}
HANDLED = {"invoice.payment_failed", "invoice.paid", "invoice.voided", "payment_method.attached",
           "subscription.canceled", *PAYMENT_OUTCOMES}


def _refs(events, *types) -> dict[int, set[str]]:
    refs = defaultdict(set)
    for event in events:
        if event.type in types and isinstance(event.data.get("id"), str):
            refs[event.organization_id].add(event.data["id"])
    return refs


def _pks(model, refs: dict[int, set[str]], **filters) -> list[int]:
    ids = []
    for organization_id, public_ids in refs.items():
        ids += model.objects.filter(organization_id=organization_id, public_id__in=public_ids, **filters).values_list(
            "pk", flat=True)
    return ids


def react_to_events(events) -> None:
    events = [e for e in events if e.type in HANDLED]
    if not events:
        return
    failed = _refs(events, "invoice.payment_failed")
    if failed:
        invoice_ids = _pks(Invoice, failed, status="open", dunning__isnull=True)
        if invoice_ids:
            services.open_dunning(invoice_ids=invoice_ids)
    settled = _refs(events, "invoice.paid", "invoice.voided")
    if settled:
        services.settle_invoices(invoice_ids=_pks(Invoice, settled))
    canceled = _refs(events, "subscription.canceled")
    if canceled:
        services.cancel_retries(subscription_ids=_pks(Subscription, canceled))
    attached = [e for e in events if e.type == "payment_method.attached"]
    if attached:
        _retry_with_new_methods(attached)
    _follow_dunning_payments([e for e in events if e.type in PAYMENT_OUTCOMES and e.data.get("source") == "dunning"])


def _retry_with_new_methods(events) -> None:
    # Most methods are attached by accounts with nothing in dunning (every sign-up): one query says so.
    account_refs = {e.data.get("account_id") for e in events} - {None}
    if not DunningInvoice.objects.filter(account__public_id__in=account_refs, status__in=("scheduled", "exhausted"),
                                         invoice__status="open").exists():
        return
    refs = _refs(events, "payment_method.attached")
    retrying = set(DunningConfig.objects.filter(organization_id__in=list(refs), auto_retry_enabled=True)
                   .values_list("organization_id", flat=True))
    methods = []
    for organization_id, public_ids in refs.items():
        if organization_id not in retrying:
            continue
        methods += PaymentMethod.objects.filter(organization_id=organization_id, public_id__in=public_ids,
                                                status="active", single_use=False).values_list("pk", "account_id")
    in_dunning = set(DunningInvoice.objects.filter(
        account_id__in={account_id for _, account_id in methods}, status__in=("scheduled", "exhausted"),
        invoice__status="open").values_list("account_id", flat=True))
    for pk, account_id in methods:
        if account_id in in_dunning:
            retry_with_payment_method.enqueue(payment_method_id=pk)


def _follow_dunning_payments(events) -> None:
    if not events:
        return
    outcome_of = {}
    for event in events:
        if event.type == "payment.pending" and event.data.get("method") == "card":
            continue  # a card still processing at the provider: not an outcome yet
        outcome_of[(event.organization_id, event.data.get("id"))] = PAYMENT_OUTCOMES[event.type]
    records = list(RecoveryRecord.objects.filter(outcome="processing", payment__public_id__in=[
        ref for _, ref in outcome_of]).select_related("payment"))
    for record in records:
        record.outcome = outcome_of.get((record.organization_id, record.payment.public_id), record.outcome)
        if record.outcome == "failed":
            record.decline_code = record.payment.failure_code
            record.message = record.payment.failure_message[:500]
    update_rows(records, ["outcome", "decline_code", "message"])


register_sink(react_to_events)
