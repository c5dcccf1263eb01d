"""The dunning jobs (registered in jobs/catalog.py).

`payment-retry` (0 */6 * * *): marks invoices in dunning that passed their due date overdue, then runs
every due attempt in batches (see retries.py), each batch claimed before anything is charged. The
gateway calls happen outside transactions, so this sweep runs its own batches instead of
JobRunContext.process; a batch that raises is retried attempt by attempt, and an attempt that keeps
failing is parked (`failed`, with its error) after DunningInvoice.MAX_ERRORS tries.

`suspension-check` (0 2 * * *): suspends the accounts whose retries are exhausted and whose grace
period has passed (services.suspendable_cases), in batches of one transaction each.
"""

import logging
import traceback

from django.db import transaction
from django.db.models import F

from cobrador.core import clock
from cobrador.dunning import retries, services
from cobrador.dunning.models import DunningInvoice

logger = logging.getLogger(__name__)

SUSPENSION_BATCH_SIZE = 500
OVERDUE_BATCH_SIZE = 500


def payment_retry_sweep(run) -> None:
    overdue = list(services.invoices_to_mark_overdue(run.as_of.date()).order_by("pk").values_list("pk", flat=True))

    def mark(batch):
        run.count("marked_overdue", services.mark_overdue(dunning_ids=batch, today=run.as_of.date()))

    run.process(overdue, mark, batch_size=OVERDUE_BATCH_SIZE)

    paused = retries.due_schedules(run.as_of, clock.now()).filter(
        organization__dunning_config__auto_retry_enabled=False).count()
    if paused:
        run.skip("auto_retry_disabled", paused)
    while True:
        ids, token = retries.claim_due(as_of=run.as_of, limit=retries.BATCH_SIZE)
        if not ids:
            break
        _run_batch(run, ids, token)


def _run_batch(run, ids: list[int], token: str) -> None:
    try:
        _add(run, retries.run_attempts(ids, token=token, anchor=run.as_of))
        run.done += len(ids)
        return
    except Exception:
        if len(ids) == 1:
            _record_failure(run, ids[0])
            return
        logger.warning("payment-retry: a batch of %d failed; retrying its attempts one by one", len(ids),
                       exc_info=True)
    for pk in ids:
        try:
            _add(run, retries.run_attempts([pk], token=token, anchor=run.as_of))
            run.done += 1
        except Exception:
            _record_failure(run, pk)


def _add(run, counts) -> None:
    for kind, n in counts.items():
        run.count(kind, n)


def _record_failure(run, pk: int) -> None:
    """The attempt keeps its lease (a later run takes it again once it runs out), or is parked."""
    run.failed += 1
    error = traceback.format_exc(limit=8)
    logger.error("payment-retry: dunning %s failed: %s", pk, error.strip().splitlines()[-1])
    with transaction.atomic():
        DunningInvoice.objects.filter(pk=pk).update(error_count=F("error_count") + 1, last_error=error,
                                                    updated_at=clock.now())
        DunningInvoice.objects.filter(pk=pk, status="running", error_count__gte=DunningInvoice.MAX_ERRORS).update(
            status="failed", lease_until=None, lease_token="")


def suspension_check_sweep(run) -> None:
    ids = list(services.suspendable_cases(run.as_of).order_by("pk").values_list("pk", flat=True))

    def handle_batch(batch):
        for kind, n in services.suspend(case_ids=batch, as_of=run.as_of).items():
            run.count(kind, n)

    run.process(ids, handle_batch, batch_size=SUSPENSION_BATCH_SIZE)
