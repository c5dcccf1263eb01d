from django.contrib import admin
from django.db import transaction

from cobrador.webhooks import services
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "url", "status", "failing_since", "created_at")
    list_filter = ("status",)
    search_fields = ("public_id", "url")
    exclude = ("secret", "previous_secret")
    readonly_fields = ("public_id", "organization", "disabled_at", "failing_since", "created_at", "updated_at",
                       "previous_secret_expires_at")


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "attempted_at", "status_code", "duration_ms", "succeeded", "error", "response_body")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "endpoint", "event", "status", "attempt_count", "last_status_code",
                    "next_attempt_at", "created_at")
    list_filter = ("status",)
    search_fields = ("public_id", "event__public_id")
    readonly_fields = [f.name for f in WebhookDelivery._meta.fields]
    inlines = [WebhookAttemptInline]
    actions = ["replay"]

    @admin.action(description="Replay the selected deliveries (same webhook-id)")
    def replay(self, request, queryset):
        replayed = 0
        with transaction.atomic():
            for delivery in queryset.select_related("endpoint"):
                if delivery.endpoint.status == "enabled":
                    services.replay_delivery(delivery=delivery)
                    replayed += 1
        self.message_user(request, f"{replayed} deliveries queued again.")
