import threading

from django.contrib import admin

from cobrador.jobs.health import job_health
from cobrador.jobs.models import FailedItem, JobRun, JobState, OpsAlert


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job_name", "as_of", "trigger", "status", "items_done", "items_failed", "finished_at")
    list_filter = ("job_name", "status", "trigger")
    readonly_fields = [f.name for f in JobRun._meta.fields]


# The health of every job, computed once per changelist request (three queries), not once per row.
_request_health = threading.local()


@admin.register(JobState)
class JobStateAdmin(admin.ModelAdmin):
    """Every job's health (jobs/health.py): ok, late, stuck, never or off, with the reason."""

    list_display = ("job_name", "health", "last_success_at", "last_checked_at", "typical_seconds",
                    "incident_state", "incident_started_at")
    readonly_fields = [f.name for f in JobState._meta.fields]

    def changelist_view(self, request, extra_context=None):
        _request_health.by_name = {h.name: h for h in job_health()}
        try:
            return super().changelist_view(request, extra_context)
        finally:
            _request_health.by_name = None

    @admin.display(description="health")
    def health(self, state: JobState) -> str:
        by_name = getattr(_request_health, "by_name", None) or {h.name: h for h in job_health()}
        health = by_name.get(state.job_name)
        if health is None:
            return "unknown job"
        return f"{health.state}: {health.reason}" if health.reason else health.state


@admin.register(OpsAlert)
class OpsAlertAdmin(admin.ModelAdmin):
    list_display = ("job_name", "kind", "incident_started_at", "created_at", "sent_at", "attempts")
    list_filter = ("job_name", "kind")
    readonly_fields = [f.name for f in OpsAlert._meta.fields]


@admin.register(FailedItem)
class FailedItemAdmin(admin.ModelAdmin):
    list_display = ("job_name", "item_key", "attempts", "parked", "last_failed_at")
    list_filter = ("job_name", "parked")
    readonly_fields = ("job_name", "item_key", "attempts", "last_error", "first_failed_at", "last_failed_at")
    actions = ["retry_items"]

    @admin.action(description="Unpark: let the next run try these items again")
    def retry_items(self, request, queryset):
        count = queryset.delete()[0]
        self.message_user(request, f"{count} item(s) will be tried again at the next run.")
