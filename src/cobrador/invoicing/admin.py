from django.contrib import admin

from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence


class InvoiceLineInline(admin.TabularInline):
    model = InvoiceLine
    fields = ("description", "plan", "quantity", "unit_amount", "amount", "period_start", "period_end")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(Invoice)
class InvoiceAdmin(admin.ModelAdmin):
    """Invoices are read-only here: amounts and numbers come from invoice generation; voiding goes
    through the API so the event is emitted."""

    list_display = ("public_id", "number", "account", "status", "total", "amount_due", "due_date")
    list_filter = ("status", "currency")
    search_fields = ("public_id", "account__public_id", "subscription__public_id")
    list_select_related = ("organization", "account")
    inlines = [InvoiceLineInline]

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in Invoice._meta.fields]

    def has_add_permission(self, request):
        return False


@admin.register(InvoiceNumberSequence)
class InvoiceNumberSequenceAdmin(admin.ModelAdmin):
    list_display = ("organization", "last_number")
    readonly_fields = ("organization", "last_number")

    def has_add_permission(self, request):
        return False
