"""The `invoice-generation` job (0 1 * * *): one invoice per (subscription, period_start).

Due: every trialing, active or past_due subscription whose current period has started and has no
invoice for (subscription, current_period_start) — one query with an anti-join on the unique
(subscription, period_start) index. Trialing subscriptions without a payment method (on the
subscription or the account's default) are skipped and counted. Batches of BATCH_SIZE are invoiced
by `generate_invoices`, one transaction per batch; a rerun finds nothing due and writes nothing.
The invoices are left open (a zero-total invoice is paid at once); their invoice.created events make
payments/sink.py enqueue their charge in the batch's transaction, so charging starts as it commits.
"""

from django.db.models import BooleanField, Case, Exists, OuterRef, Q, Value, When

from cobrador.customers.models import PaymentMethod
from cobrador.invoicing.models import Invoice
from cobrador.invoicing.services import BILLABLE_STATUSES, generate_invoices
from cobrador.subscriptions.models import Subscription

BATCH_SIZE = 500


def due_subscriptions(as_of) -> list[tuple[int, bool]]:
    """(id, billable) for every subscription whose current period is due an invoice at `as_of`."""
    invoiced = Invoice.objects.filter(subscription=OuterRef("pk"), period_start=OuterRef("current_period_start"))
    payment_method = PaymentMethod.objects.filter(status="active").filter(
        Q(pk=OuterRef("payment_method_id")) | Q(account_id=OuterRef("account_id"), is_default=True))
    return list(
        Subscription.objects.filter(status__in=BILLABLE_STATUSES, current_period_start__lte=as_of)
        .filter(~Exists(invoiced))
        .annotate(billable=Case(When(status="trialing", then=Exists(payment_method)), default=Value(True),
                                output_field=BooleanField()))
        .order_by("pk").values_list("pk", "billable"))


def invoice_generation_sweep(run) -> None:
    due = due_subscriptions(run.as_of)
    # Accounts suspended by dunning are not billed; billing resumes from the current period on reactivation.
    suspended = set(Subscription.objects.filter(account__status="suspended", status__in=BILLABLE_STATUSES)
                    .values_list("pk", flat=True))
    if suspended:
        kept = [row for row in due if row[0] not in suspended]
        run.skip("suspended", len(due) - len(kept))
        due = kept
    ids = [pk for pk, billable in due if billable]
    if len(ids) < len(due):
        run.skip("trialing_without_payment_method", len(due) - len(ids))

    def handle_batch(batch):
        for kind, n in generate_invoices(subscription_ids=batch, as_of=run.as_of).items():
            run.count(kind, n)

    run.process(ids, handle_batch, batch_size=BATCH_SIZE)
