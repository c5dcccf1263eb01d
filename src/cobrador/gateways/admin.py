from django.contrib import admin

from cobrador.gateways.models import GatewayConfig, SandboxCharge


@admin.register(GatewayConfig)
class GatewayConfigAdmin(admin.ModelAdmin):
    """Credentials are never shown: the form leaves them out and the list names only which are set."""

    list_display = ("public_id", "organization", "provider", "methods", "active", "is_fallback", "created_at")
    list_filter = ("provider", "active", "is_fallback")
    search_fields = ("public_id", "organization__public_id", "organization__name")
    exclude = ("credentials",)
    readonly_fields = ("public_id", "organization", "provider", "callback_token", "is_fallback", "created_at",
                       "updated_at", "deleted_at", "credentials_set")

    @admin.display(description="credentials set")
    def credentials_set(self, obj):
        return ", ".join(sorted(k for k, v in (obj.credentials or {}).items() if v)) or "-"


@admin.register(SandboxCharge)
class SandboxChargeAdmin(admin.ModelAdmin):
    list_display = ("provider_charge_id", "reference", "method", "amount", "status", "created_at", "paid_at")
    list_filter = ("method", "status")
    search_fields = ("provider_charge_id", "reference", "idempotency_key")
    readonly_fields = [f.name for f in SandboxCharge._meta.fields]
