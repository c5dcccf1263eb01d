from django.db import models


class JobRun(models.Model):
    """One run of a scheduled sweep: when, as of what time, and what it did."""

    STATUSES = [("running", "running"), ("succeeded", "succeeded"), ("partial", "partial"), ("failed", "failed")]

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

    class Meta:
        indexes = [models.Index(fields=["job_name", "-started_at"]), models.Index(fields=["started_at"])]

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
