"""Whether the scheduled jobs are still running: each job's last finished run against its cron.

`late_jobs` is the one function /readyz and /metrics ask; when job health (`late`/`stuck`) lands in
`cobrador.jobs`, it is the one place to switch over to it.
"""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from django.db.models import Min
from django_ox.cron import CronExpression

from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import JobRun, JobState

# A tick is fired by the first worker that polls after it and the run takes its time: allow this much
# past the second missed fire time before calling a job late.
GRACE = timedelta(minutes=5)


@dataclass(frozen=True)
class LateJob:
    name: str
    cron: str
    last_finished_at: datetime | None
    due_by: datetime

    @property
    def reason(self) -> str:
        last = self.last_finished_at.isoformat() if self.last_finished_at else "never"
        return (f"job {self.name} ({self.cron}) has not finished a run since {last}; "
                f"two scheduled runs were due by {self.due_by.isoformat()}")


def _installed_at() -> datetime | None:
    """When the jobs table was created: the reference for a job that has never finished a run."""
    return MigrationRecorder(connection).migration_qs.filter(app="jobs").aggregate(at=Min("applied"))["at"]


def last_finished_at(name: str) -> datetime | None:
    # Walks the (job_name, -started_at) index from the newest run: a few rows, however long the history.
    run = (JobRun.objects.filter(job_name=name, finished_at__isnull=False).order_by("-started_at")
           .values_list("finished_at", flat=True).first())
    # A scheduled run that found nothing to do leaves no JobRun row, only the job's last check.
    checked = JobState.objects.filter(job_name=name).values_list("last_checked_at", flat=True).first()
    return max([t for t in (run, checked) if t], default=None)


def late_jobs(as_of: datetime) -> list[LateJob]:
    """Jobs whose schedule has fired twice (plus GRACE) since their last finished run, as of `as_of`."""
    installed_at = None
    late = []
    for name, spec in JOBS.items():
        cron = spec.effective_cron
        if not cron:
            continue
        reference = last_finished_at(name)
        if reference is None:
            installed_at = installed_at or _installed_at()
            if installed_at is None:
                continue
        expression = CronExpression(cron)
        naive = (reference or installed_at).astimezone(UTC).replace(tzinfo=None)  # crons are in UTC
        second_fire = expression.following(expression.following(naive))
        due_by = second_fire.replace(tzinfo=UTC) + GRACE
        if as_of > due_by:
            late.append(LateJob(name=name, cron=cron, last_finished_at=reference, due_by=due_by))
    return late
