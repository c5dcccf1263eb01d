"""Things happening at the same moment: `at_once` runs functions in threads released together, each
with its own database connection; two workers running one job's sweep at once.

run_job lets one run of a job at a time (the other tick is recorded as skipped), but the sweeps must
stay safe when two do run at once (a run judged abandoned while it was only slow, a manual run from an
older version), so these helpers run the sweep itself in both threads, past the one-run guard."""

import threading
from collections.abc import Callable
from typing import Any

from django.db import connection

from cobrador.core import clock
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import JobRunContext, _sweep_function


def at_once(*functions: Callable[[], Any], timeout: float = 60) -> list:
    """Run each function in its own thread, all released at the same moment (a barrier), each with its
    own database connection (closed at the end); asserts none raised and returns their results in order."""
    barrier = threading.Barrier(len(functions))
    results, errors = [None] * len(functions), []

    def run(i: int):
        try:
            barrier.wait(timeout=timeout)
            results[i] = functions[i]()
        except Exception as exc:  # noqa: BLE001 - asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    assert not errors, errors
    assert not any(thread.is_alive() for thread in threads), "a thread did not finish in time"
    return results


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
    runs = at_once(*[lambda: run_sweep(name, as_of=as_of)] * 2, timeout=timeout)
    assert [run.status for run in runs] == ["succeeded", "succeeded"]
    return runs
