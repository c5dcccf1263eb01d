"""The django-ox worker class of `cobrador worker` (TASKS OPTIONS WORKER_CLASS).

django-ox turns SIGTERM and SIGINT into `request_stop()` and then waits for the tasks in flight. A task
running a sweep over thousands of due rows would keep it waiting for minutes, so the request is also
passed to core.stopping, which every sweep and delivery loop checks between batches.
"""

from django_ox.worker import Worker

from cobrador.core import stopping


class StoppableWorker(Worker):
    _ending_by_itself = False

    def _complete(self, event: str, message: str) -> None:
        # `--drain` (idle) and --max-tasks end the worker by itself through request_stop(): that is not a
        # shutdown the running sweeps should cut short, and `cobrador worker --drain` drains again after.
        self._ending_by_itself = True
        super()._complete(event, message)

    def request_stop(self) -> None:
        if not self._ending_by_itself:
            stopping.request()
        super().request_stop()
