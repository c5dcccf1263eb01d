from django import forms
from django.contrib import admin
from django.db import transaction

from cobrador.core.errors import ValidationFailed
from cobrador.webhooks import services
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    """The API's rules apply here too: the SSRF guard on the URL, known event types only."""

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "description", "enabled_events", "status"]

    def clean(self):
        cleaned = super().clean()
        # The API's own checks, so the admin accepts exactly what the API accepts.
        checks = [("url", services._check_url), ("enabled_events", services._check_events)]  # noqa: SLF001
        for field, check in checks:
            if field in self.changed_data and field in cleaned:
                try:
                    check(cleaned[field])
                except ValidationFailed as exc:
                    self.add_error(field, exc.message)
        return cleaned


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ("public_id", "organization", "url", "status", "failing_since", "created_at")
    list_filter = ("status",)
    search_fields = ("public_id", "url")
    readonly_fields = ("public_id", "organization", "disabled_reason", "disabled_at", "failing_since",
                       "created_at", "updated_at", "previous_secret_expires_at")

    def has_add_permission(self, request):
        return False  # registered through the API, which makes the secret (an admin-added row had none)

    def save_model(self, request, obj, form, change):
        # Through the service, so disabling or enabling sets the reason and time as the API does.
        with transaction.atomic():
            endpoint = WebhookEndpoint.objects.select_for_update().get(pk=obj.pk)
            services.update_endpoint(endpoint=endpoint,
                                     changes={f: form.cleaned_data[f] for f in form.changed_data})


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    readonly_fields = ("number", "attempted_at", "status_code", "duration_ms", "succeeded", "error", "response_body")


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ("public_id", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at",
                    "created_at")
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
