"""The process's stop request: set when a worker is told to stop (SIGTERM or SIGINT reach django-ox,
whose worker class, jobs.worker.StoppableWorker, sets it here), read by every long loop between batches.

A loop that sees it finishes or releases the batch in hand and returns; what it left is still due
(sweeps are level-triggered, outbox rows keep their due time), so the next worker carries on. Without
it, a task running a sweep over many due rows kept the worker from exiting for minutes.

Processes a sweep spawns (jobs/parallel.py) link a multiprocessing event, which their parent sets.
"""

import threading

_requested = threading.Event()
_linked = None  # a multiprocessing.Event shared with the parent process, in a spawned child


def request() -> None:
    _requested.set()
    if _linked is not None:
        _linked.set()


def requested() -> bool:
    if _requested.is_set():
        return True
    if _linked is not None and _linked.is_set():
        _requested.set()
        return True
    return False


def wait(seconds: float) -> bool:
    """Sleep up to `seconds`, waking at once on a stop request; returns whether one was made."""
    return _requested.wait(seconds) or requested()


def link(event) -> None:
    """Also stop when `event` (a multiprocessing.Event set by the parent process) is set."""
    global _linked
    _linked = event


def clear() -> None:
    """Forget a stop request (tests, and a process that runs again after one)."""
    _requested.clear()
