from django.contrib import admin
from django.db import transaction
from django.utils.html import format_html

from cobrador.callbacks import receiving
from cobrador.callbacks.models import GatewayCallback
from cobrador.callbacks.services import redacted_headers


@admin.register(GatewayCallback)
class GatewayCallbackAdmin(admin.ModelAdmin):
    list_display = ("public_id", "provider", "event_type", "status", "attempts", "received_at")
    list_filter = ("status", "provider")
    search_fields = ("public_id", "event_id", "event_type")
    fields = ("public_id", "organization", "gateway", "provider", "event_id", "event_type", "status", "attempts",
              "next_attempt_at", "error", "changes", "received_at", "processed_at", "shown_headers", "shown_body")
    readonly_fields = fields
    actions = ["reprocess"]

    @admin.display(description="headers (signatures redacted)")
    def shown_headers(self, obj):
        return format_html("<pre>{}</pre>", "\n".join(f"{k}: {v}" for k, v in redacted_headers(obj.headers).items()))

    @admin.display(description="body")
    def shown_body(self, obj):
        return format_html("<pre>{}</pre>", bytes(obj.body).decode("utf-8", errors="replace"))

    def has_add_permission(self, request):
        return False

    @admin.action(description="Process the selected callbacks again (rejected ones are skipped)")
    def reprocess(self, request, queryset):
        count = 0
        with transaction.atomic():
            for callback in queryset.select_for_update(of=("self",)).exclude(status="rejected"):
                receiving.reprocess(callback)
                count += 1
        self.message_user(request, f"{count} callback(s) queued for processing.")
