"""The `retention-cleanup` job: prune what only matters for a while (COBRADOR_RETENTION_* days)."""

import io
from datetime import timedelta

from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from cobrador.callbacks.models import GatewayCallback
from cobrador.core import stopping
from cobrador.core.models import IdempotencyRecord
from cobrador.core.idempotency import REPLAY_WINDOW
from cobrador.events.models import Event
from cobrador.jobs.models import JobRun
from cobrador.notifications.models import Notice
from cobrador.webhooks.models import WebhookDelivery

BATCH = 1000


def _delete_in_batches(queryset) -> int:
    deleted = 0
    while not stopping.requested():
        with transaction.atomic():
            ids = list(queryset.values_list("pk", flat=True)[:BATCH])
            if not ids:
                return deleted
            queryset.model.objects.filter(pk__in=ids).delete()
        deleted += len(ids)
    return deleted


def retention_cleanup_sweep(run) -> None:
    days = settings.RETENTION_DAYS
    as_of = run.as_of
    finished_deliveries = WebhookDelivery.objects.filter(
        finished_at__lt=as_of - timedelta(days=days["webhook_deliveries"]))
    run.count("webhook_deliveries", _delete_in_batches(finished_deliveries))
    # Events go only once none of their deliveries is still pending.
    old_events = Event.objects.filter(created_at__lt=as_of - timedelta(days=days["events"])).exclude(
        webhook_deliveries__status="pending")
    run.count("events", _delete_in_batches(old_events))
    old_runs = JobRun.objects.filter(started_at__lt=as_of - timedelta(days=days["job_runs"])).exclude(pk=run.run.pk)
    run.count("job_runs", _delete_in_batches(old_runs))
    run.count("idempotency_keys", _delete_in_batches(IdempotencyRecord.objects.filter(
        created_at__lt=as_of - REPLAY_WINDOW)))
    run.count("callbacks", _delete_in_batches(GatewayCallback.objects.filter(
        status__in=["processed", "ignored", "rejected"],
        received_at__lt=as_of - timedelta(days=days["callbacks"]))))
    # In-app notices are the customer's inbox: kept. Sent or failed e-mails and webhooks are pruned.
    run.count("notices", _delete_in_batches(Notice.objects.filter(
        channel__in=["email", "webhook"], status__in=["sent", "failed"],
        created_at__lt=as_of - timedelta(days=days["notices"]))))
    call_command("ox_prune", older_than=f"{days['tasks']}d", stdout=io.StringIO())
    run.done += sum(run.counts.values())
