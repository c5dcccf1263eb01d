from django.db import models
from django.db.models import Q


class JobRun(models.Model):
    """One run of a scheduled sweep: when, as of what time, and what it did.

    One run of a job at a time: a `running` row is unique per job. While it runs, its process writes
    `heartbeat_at` (wall time) every JOB_HEARTBEAT_SECONDS; a running row whose heartbeat is stale belongs
    to a dead process and is marked `abandoned`. A tick that finds another run still alive is recorded as
    `skipped`; a run cut short by a worker's shutdown is `interrupted` (what it left is still due)."""

    STATUSES = [(s, s) for s in ("running", "succeeded", "partial", "failed", "interrupted", "abandoned",
                                 "skipped")]
    # The job did its work (a partial run parked what failed, visibly).
    SUCCESSFUL = ("succeeded", "partial")

    job_name = models.CharField(max_length=64)
    as_of = models.DateTimeField()
    trigger = models.CharField(max_length=16, default="schedule")  # schedule, cli, simulate
    status = models.CharField(max_length=16, choices=STATUSES, default="running")
    started_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)
    items_done = models.PositiveIntegerField(default=0)
    items_failed = models.PositiveIntegerField(default=0)
    items_skipped = models.PositiveIntegerField(default=0)
    counts = models.JSONField(default=dict, blank=True)  # per-kind tallies, e.g. {"renewed": 3}
    error = models.TextField(blank=True, default="")
    heartbeat_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["job_name", "-started_at"]), models.Index(fields=["started_at"]),
                   models.Index(fields=["status", "heartbeat_at"])]
        constraints = [models.UniqueConstraint(fields=["job_name"], condition=Q(status="running"),
                                               name="one_running_run_per_job")]

    def __str__(self):
        return f"{self.job_name} @ {self.as_of:%Y-%m-%d %H:%M} ({self.status})"


class FailedItem(models.Model):
    """An item a sweep could not process. After MAX_ATTEMPTS it is parked: sweeps skip it until an
    operator retries it (admin action), so one bad row never blocks the rest."""

    MAX_ATTEMPTS = 3

    job_name = models.CharField(max_length=64)
    item_key = models.CharField(max_length=100)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField()
    first_failed_at = models.DateTimeField()
    last_failed_at = models.DateTimeField()
    parked = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job_name", "item_key"], name="failed_item_once")]

    def __str__(self):
        return f"{self.job_name}:{self.item_key}"


class JobState(models.Model):
    """What is known of one job between its runs: the last check that found nothing to do (such ticks
    write no JobRun row), the last success, how long a run usually takes, and the open health incident
    (jobs/health.py) so operators are told once per incident."""

    job_name = models.CharField(max_length=64, unique=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)  # the last run that found nothing to do
    last_success_at = models.DateTimeField(null=True, blank=True)  # finished, succeeded or partial
    typical_seconds = models.FloatField(null=True, blank=True)  # a moving average of successful runs
    incident_state = models.CharField(max_length=8, blank=True, default="")  # late or stuck while one is open
    incident_started_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    def __str__(self):
        return self.job_name


class OpsAlert(models.Model):
    """An e-mail to the operators (settings.OPS_EMAIL) about a job's health: written with the incident's
    state change, sent after commit, once per (job, kind, incident)."""

    KINDS = [(k, k) for k in ("late", "stuck", "recovered")]

    job_name = models.CharField(max_length=64)
    kind = models.CharField(max_length=9, choices=KINDS)
    incident_started_at = models.DateTimeField()
    subject = models.CharField(max_length=200)
    body = models.TextField()
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["job_name", "kind", "incident_started_at"],
                                               name="one_ops_alert_per_incident")]
        indexes = [models.Index(fields=["sent_at"])]

    def __str__(self):
        return f"{self.job_name} {self.kind} @ {self.incident_started_at:%Y-%m-%d %H:%M}"
