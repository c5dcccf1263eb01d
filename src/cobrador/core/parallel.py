"""Running one sweep's work in several processes.

One Python process is bound by one core (the GIL), so a sweep whose batches are mostly Python work
(payment-retry: building payments, records, events and notices) can spread them over processes. Each
process claims its own batches from the database, as two workers running the same sweep would, so this
adds no new way to double anything: it only starts the second worker itself.

The children are spawned (never forked: the worker that runs sweeps has threads) and set up Django with
the parent's database and, when frozen, the parent's clock.
"""

import gc
import multiprocessing
import os
import threading
from collections.abc import Callable

from django.db import connection

from cobrador.core import clock, stopping


def run_in_processes(function: Callable, args: tuple, *, processes: int) -> list:
    """`function(*args)` in this process and in `processes - 1` spawned ones at once; their results (the
    parent's first). `function` must be importable by name and its arguments and result picklable."""
    if processes <= 1:
        return [function(*args)]
    context = multiprocessing.get_context("spawn")
    # The children stop at the worker's stop request too (core.stopping): the parent passes it on.
    stop = context.Event()
    finished = threading.Event()

    def pass_on_stop():
        while not finished.wait(0.2):
            if stopping.requested():
                stop.set()
                return

    watcher = threading.Thread(target=pass_on_stop, name="pass-on-stop", daemon=True)
    watcher.start()
    try:
        with context.Pool(processes - 1, initializer=_set_up_child,
                          initargs=(connection.settings_dict["NAME"], clock.now() if clock.is_frozen() else None,
                                    stop),
                          maxtasksperchild=1) as pool:
            pending = [pool.apply_async(function, args) for _ in range(processes - 1)]
            own = function(*args)
            return [own] + [result.get() for result in pending]
    finally:
        finished.set()


def _set_up_child(database_name: str, frozen_at, stop) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
    import django

    django.setup()
    from django.db import connections

    # A test database (test_<name>) is named only in the parent's settings.
    connections["default"].settings_dict["NAME"] = database_name
    clock.set(frozen_at)
    stopping.link(stop)
    gc.freeze()  # as the worker does: what setup loaded is not walked by every full collection
