"""The `retention-cleanup` job: prune what only matters for a while (COBRADOR_RETENTION_* days).

Each app prunes its own rows: it registers a pruner in its AppConfig.ready() (as sinks register with
register_sink), and the job runs every registered pruner, in the order the apps are installed. This
module knows no domain: it prunes only the job runs of jobs/ itself and django-ox's finished tasks.
"""

import io
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.core.management import call_command
from django.db import transaction

from cobrador.core import stopping
from cobrador.jobs.models import JobRun

BATCH = 1000

# count name -> pruner(as_of) returning how many rows it deleted.
_pruners: dict[str, Callable[[datetime], int]] = {}


def register_pruner(name: str, prune: Callable[[datetime], int]) -> None:
    """`name` is the count the job's run reports (e.g. "events")."""
    _pruners[name] = prune


def delete_in_batches(queryset) -> int:
    """Delete what `queryset` selects, BATCH rows per short transaction; returns how many."""
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
    old_runs = JobRun.objects.filter(started_at__lt=as_of - timedelta(days=days["job_runs"])).exclude(pk=run.run.pk)
    run.count("job_runs", delete_in_batches(old_runs))
    for name, prune in _pruners.items():
        run.count(name, prune(as_of))
    call_command("ox_prune", older_than=f"{days['tasks']}d", stdout=io.StringIO())
    run.done += sum(run.counts.values())
