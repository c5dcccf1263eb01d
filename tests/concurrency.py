"""Two workers running one job at the same moment: two threads, each with its own database connection."""

import threading

from django.db import connection

from cobrador.jobs.runner import run_job


def run_job_in_two_threads(name: str, *, as_of, timeout: float) -> list:
    """Start `name` in two threads at once; both runs must succeed. Returns the two JobRuns."""
    barrier = threading.Barrier(2)
    runs, errors = [], []

    def worker():
        try:
            barrier.wait()
            runs.append(run_job(name, as_of=as_of))
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
