from django.contrib import admin

from cobrador.core import clock
from cobrador.pages.models import PageBranding, PageLink


@admin.register(PageLink)
class PageLinkAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "kind", "object_id", "created_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("public_id", "object_id")
    readonly_fields = ("public_id", "organization", "kind", "object_id", "token_hash", "created_at")
    actions = ["revoke"]

    @admin.action(description="Revoke the selected links")
    def revoke(self, request, queryset):
        queryset.filter(revoked_at=None).update(revoked_at=clock.now())


admin.site.register(PageBranding)
