from django.contrib import admin

from cobrador.payments.models import Payment, PaymentRefund


class PaymentRefundInline(admin.TabularInline):
    model = PaymentRefund
    extra = 0
    can_delete = False
    fields = ("public_id", "amount", "status", "reason", "failure_message", "attempts", "created_at")
    readonly_fields = fields


@admin.register(Payment)
class PaymentAdmin(admin.ModelAdmin):
    """Read-only: payments change only through the provider's answers (charges, callbacks, reconciliation)."""

    list_display = ("public_id", "invoice", "method", "status", "amount", "failure_code", "created_at")
    list_filter = ("status", "method", "provider", "source")
    search_fields = ("public_id", "provider_charge_id", "idempotency_key", "invoice__public_id",
                     "account__public_id")
    readonly_fields = [f.name for f in Payment._meta.fields]
    inlines = [PaymentRefundInline]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
