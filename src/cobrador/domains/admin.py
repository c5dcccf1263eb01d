from django.contrib import admin

from cobrador.domains.models import AcmeAccount, CustomDomain, CustomDomainChange


class CustomDomainChangeInline(admin.TabularInline):
    model = CustomDomainChange
    fields = ("at", "from_status", "to_status", "reason", "message")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("pk",)


@admin.register(CustomDomain)
class CustomDomainAdmin(admin.ModelAdmin):
    list_display = ("hostname", "organization", "status", "reason", "certificate_not_after", "renew_at",
                    "next_dns_check_at")
    list_filter = ("status", "reason")
    search_fields = ("hostname", "public_id")
    # Keys and certificates never show here (encrypted at rest; published for the TLS server only).
    exclude = ("certificate_pem", "private_key_pem")
    readonly_fields = [f.name for f in CustomDomain._meta.fields if f.name not in ("certificate_pem",
                                                                                   "private_key_pem")]
    inlines = [CustomDomainChangeInline]

    def has_add_permission(self, request):
        return False


@admin.register(AcmeAccount)
class AcmeAccountAdmin(admin.ModelAdmin):
    list_display = ("directory_url", "uri", "created_at")
    exclude = ("key_pem",)
    readonly_fields = ("directory_url", "uri", "created_at")

    def has_add_permission(self, request):
        return False
