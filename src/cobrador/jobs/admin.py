from django.contrib import admin

from cobrador.jobs.models import FailedItem, JobRun


@admin.register(JobRun)
class JobRunAdmin(admin.ModelAdmin):
    list_display = ("job_name", "as_of", "trigger", "status", "items_done", "items_failed", "finished_at")
    list_filter = ("job_name", "status", "trigger")
    readonly_fields = [f.name for f in JobRun._meta.fields]


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
