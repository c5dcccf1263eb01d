"""The callbacks job (registered in jobs/catalog.py)."""

from cobrador.callbacks import processing
from cobrador.callbacks.tasks import enqueue_retry


def callback_retry_sweep(run) -> None:
    """`callback-retry`: rerun failed callbacks whose backoff has passed and rows stuck in received or
    processing (a lost wake-up, a dead worker)."""
    processed = processing.retry_due(as_of=run.as_of)
    enqueue_retry(processed.retry_at)
    for status, n in processed.counts.items():
        run.count(status, n)
        if status == "failed":
            run.failed += n
        else:
            run.done += n
