from django.contrib import admin

from cobrador.core import clock
from cobrador.organizations.models import ApiKey, DunningConfig, Membership, Organization


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    fields = ("public_id", "name", "last4", "created_at", "revoked_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


class MembershipInline(admin.TabularInline):
    """The people who may open the organization's dashboard (/dashboard/)."""
    model = Membership
    fields = ("user", "created_at")
    readonly_fields = ("created_at",)
    autocomplete_fields = ("user",)
    extra = 0


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("public_id", "name", "mode", "default_currency", "created_at")
    list_filter = ("mode",)
    search_fields = ("public_id", "name")
    readonly_fields = ("public_id",)
    inlines = [ApiKeyInline, MembershipInline]

    def save_formset(self, request, form, formset, change):
        for membership in formset.save(commit=False):
            if isinstance(membership, Membership) and membership.created_at is None:
                membership.created_at = clock.now()
            membership.save()
        for gone in formset.deleted_objects:
            gone.delete()
        formset.save_m2m()


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


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "created_at")
    search_fields = ("user__username", "user__email", "organization__public_id", "organization__name")
    autocomplete_fields = ("user", "organization")
    readonly_fields = ("created_at",)

    def save_model(self, request, obj, form, change):
        if obj.created_at is None:
            obj.created_at = clock.now()
        super().save_model(request, obj, form, change)
