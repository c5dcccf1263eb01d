from django.contrib import admin, messages
from django.db import transaction

from cobrador.dunning import services
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord


class DunningInvoiceInline(admin.TabularInline):
    model = DunningInvoice
    fields = ("invoice", "status", "attempts_made", "next_attempt_number", "next_attempt_at", "next_methods",
              "overdue_at", "closed_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(DelinquentAccount)
class DelinquentAccountAdmin(admin.ModelAdmin):
    list_display = ("public_id", "account", "status", "overdue_invoice_count", "overdue_amount", "opened_at",
                    "suspended_at")
    list_filter = ("status",)
    search_fields = ("public_id", "account__public_id", "account__name", "account__email")
    readonly_fields = ("public_id", "organization", "account", "status", "opened_at", "overdue_invoice_count",
                       "overdue_amount", "currency", "suspended_at", "closed_at", "updated_at")
    inlines = [DunningInvoiceInline]
    actions = ["write_off"]

    @admin.action(description="Write off: close the case and cancel its pending retries")
    def write_off(self, request, queryset):
        with transaction.atomic():
            for case in queryset:
                services.write_off(case=case)
        self.message_user(request, f"{queryset.count()} case(s) written off.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False


@admin.register(DunningInvoice)
class DunningInvoiceAdmin(admin.ModelAdmin):
    list_display = ("invoice", "account", "status", "attempts_made", "next_attempt_at", "error_count", "opened_at")
    list_filter = ("status",)
    search_fields = ("invoice__public_id", "account__public_id")
    readonly_fields = [f.name for f in DunningInvoice._meta.fields]
    actions = ["retry_at_next_run"]

    @admin.action(description="Retry at the next payment-retry run (also unparks failed rows)")
    def retry_at_next_run(self, request, queryset):
        n = services.retry_now(dunning_ids=queryset.values_list("pk", flat=True))
        self.message_user(request, f"{n} schedule(s) due now.", messages.SUCCESS)

    def has_add_permission(self, request):
        return False


@admin.register(RecoveryRecord)
class RecoveryRecordAdmin(admin.ModelAdmin):
    list_display = ("public_id", "invoice", "attempt_number", "method", "outcome", "decline_code", "attempted_at")
    list_filter = ("outcome", "method", "provider", "attempt_number")
    search_fields = ("public_id", "invoice__public_id", "account__public_id", "payment__public_id")
    readonly_fields = [f.name for f in RecoveryRecord._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
