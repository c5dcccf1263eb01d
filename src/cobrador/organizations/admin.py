from django.contrib import admin

from cobrador.organizations.models import ApiKey, DunningConfig, Organization


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("public_id", "name", "last4", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "name", "mode", "default_currency", "created_at")
    list_filter = ("mode",)
    search_fields = ("public_id", "name")
    readonly_fields = ("public_id",)
    inlines = [ApiKeyInline]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "name", "last4", "created_at", "revoked_at")
    list_filter = ("revoked_at",)
    readonly_fields = ("public_id", "organization", "key_hash", "last4", "created_at")
    exclude = ()


@admin.register(DunningConfig)
class DunningConfigAdmin(admin.ModelAdmin):
    list_display = ("organization", "max_retries", "retry_interval_days", "grace_period_days", "auto_retry_enabled",
                    "updated_at")
    readonly_fields = ("public_id",)
