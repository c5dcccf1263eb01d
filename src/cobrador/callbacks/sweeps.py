"""The callbacks job (registered in jobs/catalog.py) and what retention-cleanup prunes of callbacks."""

from datetime import datetime, timedelta

from django.conf import settings

from cobrador.callbacks import processing
from cobrador.callbacks.models import GatewayCallback
from cobrador.callbacks.tasks import enqueue_retry
from cobrador.jobs.retention import delete_in_batches


def callback_retry_sweep(run) -> None:
    """`callback-retry`: rerun failed callbacks whose backoff has passed and rows stuck in received or
    processing (a lost wake-up, a dead worker)."""
    processed = processing.retry_due(as_of=run.as_of)
    enqueue_retry(processed.retry_at)
    run.tally(processed.counts, failed=("failed",))


def prune_settled_callbacks(as_of: datetime) -> int:
    """retention-cleanup: processed, ignored and rejected callbacks older than COBRADOR_RETENTION_CALLBACK_DAYS
    (failed ones stay for an operator)."""
    return delete_in_batches(GatewayCallback.objects.filter(
        status__in=["processed", "ignored", "rejected"],
        received_at__lt=as_of - timedelta(days=settings.RETENTION_DAYS["callbacks"])))
