"""Two workers running one job's sweep at the same moment: two threads, each with its own database
connection.

run_job lets one run of a job at a time (the other tick is recorded as skipped), but the sweeps must
stay safe when two do run at once (a run judged abandoned while it was only slow, a manual run from an
older version), so these helpers run the sweep itself in both threads, past the one-run guard."""

import threading

from django.db import connection

from cobrador.core import clock
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import JobRunContext, _sweep_function


def run_sweep(name: str, *, as_of) -> JobRun:
    """The sweep of `name` as run_job runs it, without its JobRun row or the one-run guard; the returned
    (unsaved) JobRun has its status, items and counts."""
    run = JobRun(job_name=name, as_of=as_of, trigger="schedule", started_at=clock.now())
    context = JobRunContext(run)
    _sweep_function(name)(context)
    run.status = "partial" if context.failed else "succeeded"
    run.items_done, run.items_failed, run.items_skipped = context.done, context.failed, context.skipped
    run.counts = dict(context.counts)
    return run


def run_job_in_two_threads(name: str, *, as_of, timeout: float) -> list:
    """Start the sweep of `name` in two threads at once; both must succeed. Returns the two runs."""
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def worker():
        try:
            barrier.wait()
            runs.append(run_sweep(name, as_of=as_of))
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors
    assert [run.status for run in runs] == ["succeeded", "succeeded"]
    return runs
