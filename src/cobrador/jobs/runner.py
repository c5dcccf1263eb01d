"""The sweep runner: every scheduled job is a level-triggered sweep over what is due at `as_of`.

A sweep hands its due items to `JobRunContext.process`, which works in bounded batches with one
transaction per batch. When a batch fails, its items are retried one by one so that only the bad
item fails; an item that fails FailedItem.MAX_ATTEMPTS times is parked and skipped until an
operator retries it.

One run of a job at a time (a `running` JobRun is unique per job): a tick that finds another run alive
records a `skipped` run and returns. A running run writes a heartbeat from a thread; a run whose
heartbeat is stale (its process died) is marked `abandoned` by the next run of any job, which may then
take its place. A run that found nothing to do leaves no JobRun row, only its time on the job's
JobState ("last checked"), so the run list shows real work. A worker's stop request (core.stopping)
ends `process` between batches: the run is `interrupted` and what it left stays due.
"""

import logging
import threading
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db import IntegrityError, close_old_connections, connection, transaction
from django.db.models import Q

from cobrador.core import clock, logs, stopping
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import FailedItem, JobRun, JobState

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

    def tally(self, counts: dict, *, failed, done=None) -> None:
        """Count every outcome of `counts` ({kind: n}); the kinds in `failed` are items failed, the others
        (only those in `done`, when given) items done."""
        for kind, n in counts.items():
            self.count(kind, n)
            if kind in failed:
                self.failed += n
            elif done is None or kind in done:
                self.done += n

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
                if stopping.requested():  # the rest stays due for the next run
                    return
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


def abandon_dead_runs() -> int:
    """Mark running runs whose heartbeat stopped (their process died) `abandoned`."""
    stale = clock.wall_now() - timedelta(seconds=settings.JOB_ABANDONED_AFTER)
    dead = JobRun.objects.filter(status="running").filter(
        Q(heartbeat_at__lt=stale) | Q(heartbeat_at__isnull=True, started_at__lt=stale))
    count = dead.update(status="abandoned", finished_at=clock.now(),
                        error=f"no heartbeat for {settings.JOB_ABANDONED_AFTER:g} s: its process died or hung")
    if count:
        logger.warning("marked %d run(s) abandoned: no heartbeat for %g s", count, settings.JOB_ABANDONED_AFTER)
    return count


def _start(name: str, as_of: datetime, trigger: str) -> JobRun | None:
    """The new running run, or None when another run of the job is still alive."""
    for _ in range(2):
        try:
            with transaction.atomic():
                return JobRun.objects.create(job_name=name, as_of=as_of, trigger=trigger, started_at=clock.now(),
                                             heartbeat_at=clock.wall_now())
        except IntegrityError:
            if not abandon_dead_runs():
                return None
    return None


class _Heartbeat:
    """Writes the run's heartbeat every JOB_HEARTBEAT_SECONDS from a thread while the sweep runs. Not
    inside a caller's transaction (tests): no other connection could see the row."""

    def __init__(self, run: JobRun):
        self.run_pk = run.pk
        self.stop = threading.Event()
        self.thread = None
        if not connection.in_atomic_block:
            self.thread = threading.Thread(target=self._beat, name=f"heartbeat-{run.job_name}", daemon=True)
            self.thread.start()

    def _beat(self) -> None:
        try:
            while not self.stop.wait(settings.JOB_HEARTBEAT_SECONDS):
                try:
                    JobRun.objects.filter(pk=self.run_pk, status="running").update(heartbeat_at=clock.wall_now())
                except Exception:  # noqa: BLE001 - a missed beat is retried; a dead database fails the run anyway
                    logger.warning("job run %s: heartbeat not written", self.run_pk, exc_info=True)
                    close_old_connections()
        finally:
            connection.close()

    def close(self) -> None:
        self.stop.set()
        if self.thread is not None:
            self.thread.join(timeout=settings.JOB_HEARTBEAT_SECONDS + 5)


def _found_nothing(run: JobRun) -> bool:
    return (run.status == "succeeded" and not (run.items_done or run.items_failed or run.items_skipped)
            and not any(run.counts.values()))


def _record_state(run: JobRun, wall_seconds: float) -> None:
    """The job's last success (and typical duration) on its JobState; an empty scheduled check replaces
    its JobRun row there."""
    now = clock.now()
    state, _ = JobState.objects.get_or_create(job_name=run.job_name, defaults={"updated_at": now})
    fields = ["updated_at"]
    state.updated_at = now
    if run.status in JobRun.SUCCESSFUL:
        state.last_success_at = run.finished_at
        state.typical_seconds = (wall_seconds if state.typical_seconds is None
                                 else 0.8 * state.typical_seconds + 0.2 * wall_seconds)
        fields += ["last_success_at", "typical_seconds"]
    if run.trigger == "schedule" and _found_nothing(run):
        state.last_checked_at = run.finished_at
        fields.append("last_checked_at")
        run.delete()
    state.save(update_fields=fields)


def run_job(name: str, *, as_of: datetime | None = None, trigger: str = "schedule") -> JobRun:
    """Run one sweep synchronously as of `as_of` (default: the clock's now) and record its JobRun.

    Returns the run: `skipped` (unsaved details in `error`) when another run of the job is alive."""
    sweep = _sweep_function(name)
    as_of = as_of or clock.now()
    abandon_dead_runs()
    run = _start(name, as_of, trigger)
    if run is None:
        alive = JobRun.objects.filter(job_name=name, status="running").first()
        since = f" (run {alive.pk}, started {alive.started_at:%Y-%m-%d %H:%M:%S})" if alive else ""
        now = clock.now()
        logger.info("job %s: skipped, another run is still running%s", name, since)
        return JobRun.objects.create(job_name=name, as_of=as_of, trigger=trigger, status="skipped",
                                     started_at=now, finished_at=now,
                                     error=f"another run of {name} was still running{since}")
    with logs.context(job=name, run_id=run.pk):
        logger.info("job %s started as of %s (%s)", name, as_of.isoformat(), trigger)
        context = JobRunContext(run)
        heartbeat = _Heartbeat(run)
        started = clock.wall_now()
        try:
            sweep(context)
        except Exception:
            run.status = "failed"
            run.error = traceback.format_exc(limit=10)
            logger.exception("job %s failed", name)
        else:
            if stopping.requested():
                run.status = "interrupted"
                run.error = "stopped by the worker's shutdown; what it left is still due and the next run does it"
            else:
                run.status = "partial" if context.failed else "succeeded"
        finally:
            heartbeat.close()
        run.finished_at = clock.now()
        run.items_done, run.items_failed, run.items_skipped = context.done, context.failed, context.skipped
        run.counts = dict(context.counts)
        run.heartbeat_at = clock.wall_now()
        run.save(update_fields=["status", "error", "finished_at", "items_done", "items_failed", "items_skipped",
                                "counts", "heartbeat_at"])
        counts = "".join(f", {kind} {n}" for kind, n in sorted(run.counts.items()))
        logger.info("job %s %s in %.3fs: %d done, %d failed, %d skipped%s", name, run.status,
                    (run.finished_at - run.started_at).total_seconds(), run.items_done, run.items_failed,
                    run.items_skipped, counts)
        _record_state(run, (clock.wall_now() - started).total_seconds())
    return run
