from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from cobrador.core import clock
from cobrador.customers.documents import InvalidDocument, normalize_document
from cobrador.customers.models import BillingAccount, CreditGrant, CreditUsage, PaymentMethod


class BillingAccountForm(forms.ModelForm):
    # Longer than the stored field so a masked document can be typed; clean() stores it unmasked.
    document = forms.CharField(max_length=24, required=False, help_text="CPF or CNPJ, with or without mask.")

    class Meta:
        model = BillingAccount
        fields = "__all__"

    def clean(self):
        cleaned = super().clean()
        document = (cleaned.get("document") or "").strip()
        document_type = ""
        if document:
            try:
                document, document_type = normalize_document(document)
            except InvalidDocument as exc:
                self.add_error("document", str(exc))
        cleaned["document"] = document
        self.instance.document_type = document_type  # read-only in the form, derived from the document
        return cleaned


class PaymentMethodInline(admin.TabularInline):
    model = PaymentMethod
    fields = ("public_id", "type", "card_brand", "card_last4", "exp_month", "exp_year", "is_default", "status",
              "created_at", "detached_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


class CreditGrantInline(admin.TabularInline):
    model = CreditGrant
    fields = ("public_id", "amount", "remaining", "currency", "reason", "expires_at", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = True


@admin.register(BillingAccount)
class BillingAccountAdmin(admin.ModelAdmin):
    form = BillingAccountForm
    list_display = ("public_id", "name", "email", "organization", "status", "created_at", "timeline")
    list_filter = ("status", "locale", "document_type")
    search_fields = ("public_id", "name", "email", "document")
    readonly_fields = ("timeline", "public_id", "document_type", "created_at", "updated_at", "suspended_at")
    list_select_related = ("organization",)
    raw_id_fields = ("organization",)
    inlines = [PaymentMethodInline, CreditGrantInline]

    @admin.display(description="history")
    def timeline(self, obj: BillingAccount) -> str:
        """The console's timeline of the account, with the operator's actions (ops/console.py)."""
        if not obj.pk:
            return ""
        return format_html('<a href="{}" class="timeline-link">Timeline and actions</a>',
                           reverse("admin:ops_account", args=[obj.public_id]))

    def save_model(self, request, obj, form, change):
        obj.updated_at = clock.now()
        if not change:
            obj.created_at = obj.updated_at
        super().save_model(request, obj, form, change)


@admin.register(PaymentMethod)
class PaymentMethodAdmin(admin.ModelAdmin):
    list_display = ("public_id", "account", "type", "card_brand", "card_last4", "is_default", "status")
    list_filter = ("type", "status", "is_default", "card_brand")
    search_fields = ("public_id", "account__public_id", "account__name", "account__email", "card_last4")
    # Defaults and detaching go through the API, which keeps one default per account and emits events.
    readonly_fields = ("public_id", "organization", "account", "type", "card_brand", "card_last4", "exp_month",
                       "exp_year", "gateway_token", "is_default", "status", "created_at", "detached_at")
    list_select_related = ("account",)


class CreditUsageInline(admin.TabularInline):
    model = CreditUsage
    fields = ("invoice", "amount", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


@admin.register(CreditGrant)
class CreditGrantAdmin(admin.ModelAdmin):
    list_display = ("public_id", "account", "amount", "remaining", "expires_at", "created_at")
    list_filter = ("currency",)
    search_fields = ("public_id", "account__public_id", "account__name", "reason")
    # The ledger is append-only here: amounts change only by consumption.
    readonly_fields = ("public_id", "organization", "account", "amount", "remaining", "currency", "created_at")
    list_select_related = ("account",)
    inlines = [CreditUsageInline]


@admin.register(CreditUsage)
class CreditUsageAdmin(admin.ModelAdmin):
    list_display = ("grant", "invoice", "amount", "created_at")
    search_fields = ("grant__public_id", "invoice__public_id")
    readonly_fields = ("grant", "invoice", "amount", "created_at")
    list_select_related = ("grant", "invoice")
