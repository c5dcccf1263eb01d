"""The sweep runner: every scheduled job is a level-triggered sweep over what is due at `as_of`.

A sweep hands its due items to `JobRunContext.process`, which works in bounded batches with one
transaction per batch. When a batch fails, its items are retried one by one so that only the bad
item fails; an item that fails FailedItem.MAX_ATTEMPTS times is parked and skipped until an
operator retries it. Each run writes one JobRun row.
"""

import logging
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from importlib import import_module

from django.db import transaction

from cobrador.core import clock, logs
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import FailedItem, JobRun

logger = logging.getLogger(__name__)


class JobRunContext:
    def __init__(self, run: JobRun):
        self.run = run
        self.job_name = run.job_name
        self.as_of: datetime = run.as_of
        self.counts: Counter = Counter()
        self.done = 0
        self.failed = 0
        self.skipped = 0
        self._failing: set[str] = set()

    def count(self, kind: str, n: int = 1) -> None:
        self.counts[kind] += n

    def skip(self, kind: str, n: int = 1) -> None:
        self.skipped += n
        self.counts[f"skipped_{kind}"] += n

    def parked_keys(self) -> set[str]:
        return set(FailedItem.objects.filter(job_name=self.job_name, parked=True).values_list("item_key", flat=True))

    def process(self, items: Iterable, handle_batch: Callable[[Sequence], None], *, batch_size: int = 500,
                key: Callable[[object], str] = str) -> None:
        """Run `handle_batch` over `items` in batches, one transaction each; isolate failing items."""
        failures = dict(FailedItem.objects.filter(job_name=self.job_name).values_list("item_key", "parked"))
        parked = {item_key for item_key, is_parked in failures.items() if is_parked}
        # Items that failed before but are not parked: a success clears their record, so only
        # failures in a row lead to parking.
        self._failing = {item_key for item_key, is_parked in failures.items() if not is_parked}
        batch: list = []
        for item in items:
            if key(item) in parked:
                self.skip("parked")
                continue
            batch.append(item)
            if len(batch) >= batch_size:
                self._run_batch(batch, handle_batch, key)
                batch = []
        if batch:
            self._run_batch(batch, handle_batch, key)

    def _attempt(self, batch: list, handle_batch, key) -> None:
        """One transaction; what `handle_batch` counted is kept only if it commits."""
        counts_before = self.counts.copy()
        try:
            with transaction.atomic():
                handle_batch(batch)
                recovered = [key(item) for item in batch if key(item) in self._failing]
                if recovered:
                    FailedItem.objects.filter(job_name=self.job_name, item_key__in=recovered).delete()
        except BaseException:
            self.counts = counts_before
            raise
        self._failing.difference_update(recovered)
        self.done += len(batch)

    def _run_batch(self, batch: list, handle_batch, key) -> None:
        try:
            self._attempt(batch, handle_batch, key)
            return
        except Exception:  # noqa: BLE001 - one item is broken: find which, alone
            if len(batch) == 1:
                self._record_failure(batch[0], key)
                return
            logger.warning("%s: a batch of %d failed; retrying its items one by one", self.job_name, len(batch))
        for item in batch:
            try:
                self._attempt([item], handle_batch, key)
            except Exception:  # noqa: BLE001 - recorded on the run (parked if it persists); the rest go on
                self._record_failure(item, key)

    def _record_failure(self, item, key) -> None:
        self.failed += 1
        error = traceback.format_exc(limit=8)
        logger.error("%s: item %s failed: %s", self.job_name, key(item), error.strip().splitlines()[-1])
        now = clock.now()
        with transaction.atomic():
            failure, created = FailedItem.objects.select_for_update().get_or_create(
                job_name=self.job_name, item_key=key(item),
                defaults={"attempts": 1, "last_error": error, "first_failed_at": now, "last_failed_at": now})
            if not created:
                failure.attempts += 1
                failure.last_error = error
                failure.last_failed_at = now
            failure.parked = failure.attempts >= FailedItem.MAX_ATTEMPTS
            failure.save(update_fields=["attempts", "last_error", "last_failed_at", "parked"])


def _sweep_function(name: str):
    try:
        spec = JOBS[name]
    except KeyError:
        raise LookupError(f"unknown job {name!r}; `cobrador jobs list` shows the registered jobs") from None
    module_name, _, attr = spec.sweep.rpartition(".")
    return getattr(import_module(module_name), attr)


def run_job(name: str, *, as_of: datetime | None = None, trigger: str = "schedule") -> JobRun:
    """Run one sweep synchronously as of `as_of` (default: the clock's now) and record its JobRun."""
    sweep = _sweep_function(name)
    as_of = as_of or clock.now()
    run = JobRun.objects.create(job_name=name, as_of=as_of, trigger=trigger, started_at=clock.now())
    with logs.context(job=name, run_id=run.pk):
        logger.info("job %s started as of %s (%s)", name, as_of.isoformat(), trigger)
        context = JobRunContext(run)
        try:
            sweep(context)
        except Exception:
            run.status = "failed"
            run.error = traceback.format_exc(limit=10)
            logger.exception("job %s failed", name)
        else:
            run.status = "partial" if context.failed else "succeeded"
        run.finished_at = clock.now()
        run.items_done, run.items_failed, run.items_skipped = context.done, context.failed, context.skipped
        run.counts = dict(context.counts)
        run.save(update_fields=["status", "error", "finished_at", "items_done", "items_failed", "items_skipped",
                                "counts"])
        counts = "".join(f", {kind} {n}" for kind, n in sorted(run.counts.items()))
        logger.info("job %s %s in %.3fs: %d done, %d failed, %d skipped%s", name, run.status,
                    (run.finished_at - run.started_at).total_seconds(), run.items_done, run.items_failed,
                    run.items_skipped, counts)
    return run
