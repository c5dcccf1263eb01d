from django.contrib import admin, messages
from django.db import transaction

from cobrador.core.errors import ApiError
from cobrador.nfe import services
from cobrador.nfe.models import FiscalSettings, ServiceInvoice, ServiceInvoiceCall
from cobrador.nfe.tasks import sync_service_invoices


class ServiceInvoiceCallInline(admin.TabularInline):
    model = ServiceInvoiceCall
    fields = ("at", "operation", "http_status", "outcome", "duration_ms")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("pk",)


@admin.register(ServiceInvoice)
class ServiceInvoiceAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "invoice", "status", "number", "amount", "next_attempt_at")
    list_filter = ("status", "environment")
    search_fields = ("public_id", "external_id", "nfeio_id", "invoice__public_id", "account__public_id")
    readonly_fields = [f.name for f in ServiceInvoice._meta.fields]
    inlines = [ServiceInvoiceCallInline]
    actions = ["retry"]

    @admin.action(description="Retry: issue failed notes anew, re-check blocked ones, resend failed cancellations")
    def retry(self, request, queryset):
        retried, refused = 0, []
        with transaction.atomic():
            for note in queryset.select_for_update().select_related("account").order_by("pk"):
                try:
                    with transaction.atomic():
                        services.retry(note=note)
                    retried += 1
                except ApiError as exc:
                    refused.append(f"{note.public_id}: {exc.message}")
            if retried:
                sync_service_invoices.enqueue()
        self.message_user(request, f"{retried} note(s) queued again.", messages.SUCCESS)
        if refused:
            self.message_user(request, "; ".join(refused)[:2000], messages.WARNING)

    def has_add_permission(self, request):
        return False


@admin.register(FiscalSettings)
class FiscalSettingsAdmin(admin.ModelAdmin):
    list_display = ("organization", "policy", "nfeio_company_id", "city_service_code", "updated_at")
    list_filter = ("policy",)
    # The credentials never show here: they are set through the API (write-only).
    exclude = ("credentials",)
    readonly_fields = ("public_id", "organization", "callback_token", "updated_at")

    def has_add_permission(self, request):
        return False
