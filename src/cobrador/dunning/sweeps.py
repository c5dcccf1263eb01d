"""The dunning jobs (registered in jobs/catalog.py).

`payment-retry` (0 */6 * * *): marks invoices in dunning that passed their due date overdue, then runs
every due attempt in batches (see retries.py), each batch claimed before anything is charged, in
SWEEP_THREADS threads. The gateway calls happen outside transactions, so this sweep runs its own
batches instead of JobRunContext.process; a batch that raises is retried attempt by attempt, and an
attempt that keeps failing is parked (`failed`, with its error) after DunningInvoice.MAX_ERRORS tries.

`suspension-check` (0 2 * * *): suspends the accounts whose retries are exhausted and whose grace
period has passed (services.suspendable_cases), in batches of one transaction each.
"""

import logging
import os
import threading
import traceback

from django.db import connection, connections, transaction
from django.db.models import F

from cobrador.core import clock
from cobrador.dunning import retries, services
from cobrador.dunning.models import DunningInvoice

logger = logging.getLogger(__name__)

SUSPENSION_BATCH_SIZE = 500
# Batches of retries run in this many threads at once (each with its own database connection).
SWEEP_THREADS = int(os.environ.get("COBRADOR_DUNNING_SWEEP_THREADS", "2"))
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
    tally = _Tally(run)

    def claim_and_run() -> None:
        while True:
            ids, token = retries.claim_due(as_of=run.as_of, limit=retries.BATCH_SIZE)
            if not ids:
                return
            _run_batch(tally, run.as_of, ids, token)

    if SWEEP_THREADS <= 1 or connection.in_atomic_block:  # tests: other threads cannot see the transaction
        claim_and_run()
        return
    # Batches in parallel, so one batch's gateway calls overlap another's database work.
    errors = []

    def thread_main():
        try:
            claim_and_run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the sweep's thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=thread_main, name=f"payment-retry-{i}") for i in range(SWEEP_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


class _Tally:
    """The run's counts, added to from several threads."""

    def __init__(self, run):
        self.run = run
        self.lock = threading.Lock()

    def add(self, counts, *, done: int = 0, failed: int = 0) -> None:
        with self.lock:
            for kind, n in counts.items():
                self.run.count(kind, n)
            self.run.done += done
            self.run.failed += failed


def _run_batch(tally: _Tally, as_of, ids: list[int], token: str) -> None:
    try:
        tally.add(retries.run_attempts(ids, token=token, anchor=as_of), done=len(ids))
        return
    except Exception:
        if len(ids) == 1:
            _record_failure(tally, ids[0])
            return
        logger.warning("payment-retry: a batch of %d failed; retrying its attempts one by one", len(ids),
                       exc_info=True)
    for pk in ids:
        try:
            tally.add(retries.run_attempts([pk], token=token, anchor=as_of), done=1)
        except Exception:
            _record_failure(tally, pk)


def _record_failure(tally: _Tally, pk: int) -> None:
    """The attempt keeps its lease (a later run takes it again once it runs out), or is parked."""
    tally.add({}, failed=1)
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
