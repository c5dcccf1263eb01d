"""The dunning jobs (registered in jobs/catalog.py).

`payment-retry` (0 */6 * * *): marks invoices in dunning that passed their due date overdue, then runs
every due attempt in batches (see retries.py), each batch claimed before anything is charged, in
SWEEP_THREADS threads; a large sweep on PostgreSQL runs in SWEEP_PROCESSES processes instead, each
claiming its own batches as separate workers would. The gateway calls happen outside transactions, so
this sweep runs its own batches instead of JobRunContext.process; a batch that raises is retried attempt
by attempt, and an attempt that keeps failing is parked (`failed`, with its error) after
DunningInvoice.MAX_ERRORS tries.

`suspension-check` (0 2 * * *): suspends the accounts whose retries are exhausted and whose grace
period has passed (services.suspendable_cases), in batches of one transaction each.
"""

import logging
import os
import threading
import traceback
from collections import Counter

from django.db import connection, connections, transaction
from django.db.models import F

from cobrador.core import clock, parallel, stopping
from cobrador.dunning import retries, services
from cobrador.dunning.models import DunningInvoice

logger = logging.getLogger(__name__)

SUSPENSION_BATCH_SIZE = 500
# Batches of retries run in this many threads at once (each with its own database connection).
SWEEP_THREADS = int(os.environ.get("COBRADOR_DUNNING_SWEEP_THREADS", "2"))
# On PostgreSQL, a sweep with at least PROCESSES_FROM due attempts runs them in this many processes
# (core/parallel.py): one process is bound by one core. SQLite has one writer at a time, so not there.
SWEEP_PROCESSES = int(os.environ.get("COBRADOR_DUNNING_SWEEP_PROCESSES", str(min(4, os.cpu_count() or 1))))
PROCESSES_FROM = 4 * retries.BATCH_SIZE
OVERDUE_BATCH_SIZE = 500


def payment_retry_sweep(run) -> None:
    overdue = list(services.invoices_to_mark_overdue(run.as_of.date()).order_by("pk").values_list("pk", flat=True))

    def mark(batch):
        run.count("marked_overdue", services.mark_overdue(dunning_ids=batch, today=run.as_of.date()))

    run.process(overdue, mark, batch_size=OVERDUE_BATCH_SIZE)

    due = retries.due_schedules(run.as_of, clock.now())
    paused = due.filter(organization__dunning_config__auto_retry_enabled=False).count()
    if paused:
        run.skip("auto_retry_disabled", paused)
    if connection.in_atomic_block:  # tests: other threads and processes cannot see the transaction
        tallies = [retry_lane(run.as_of, threads=1)]
    elif (connection.vendor == "postgresql" and SWEEP_PROCESSES > 1
          and due.filter(organization__dunning_config__auto_retry_enabled=True).count() >= PROCESSES_FROM):
        tallies = parallel.run_in_processes(retry_lane, (run.as_of,), processes=SWEEP_PROCESSES)
    else:
        tallies = [retry_lane(run.as_of, threads=SWEEP_THREADS)]
    for tally in tallies:
        for kind, n in tally.counts.items():
            run.count(kind, n)
        run.done += tally.done
        run.failed += tally.failed


def retry_lane(as_of, threads: int = 1) -> "_Tally":
    """Claim and run due attempts, a batch at a time, until none is left; in `threads` threads at once,
    so that one batch's gateway calls overlap another's database work."""
    tally = _Tally()

    def claim_and_run() -> None:
        while not stopping.requested():  # a claimed batch is finished; the rest stays due
            ids, token = retries.claim_due(as_of=as_of, limit=retries.BATCH_SIZE)
            if not ids:
                return
            _run_batch(tally, as_of, ids, token)

    if threads <= 1:
        claim_and_run()
        return tally
    errors = []

    def thread_main():
        try:
            claim_and_run()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the lane's thread
            errors.append(exc)
        finally:
            connections.close_all()

    workers = [threading.Thread(target=thread_main, name=f"payment-retry-{i}") for i in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if errors:
        raise errors[0]
    return tally


class _Tally:
    """A lane's counts, added to from several threads; picklable, to come back from another process."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.done = 0
        self.failed = 0
        self._lock = threading.Lock()

    def add(self, counts, *, done: int = 0, failed: int = 0) -> None:
        with self._lock:
            self.counts.update(counts)
            self.done += done
            self.failed += failed

    def __getstate__(self):
        return {"counts": self.counts, "done": self.done, "failed": self.failed}

    def __setstate__(self, state):
        self.__dict__.update(state, _lock=threading.Lock())


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
        except Exception:  # noqa: BLE001 - recorded for this retry alone; the others go on
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
