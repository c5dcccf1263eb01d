from django.contrib import admin

from cobrador.catalog.models import Coupon, Plan
from cobrador.core import clock


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("public_id", "name", "organization", "amount", "interval", "trial_days", "active")
    list_filter = ("active", "interval", "currency")
    search_fields = ("public_id", "name")
    list_select_related = ("organization",)
    raw_id_fields = ("organization",)

    def get_readonly_fields(self, request, obj=None):
        # The price is immutable once the plan exists (subscriptions and invoices rely on it).
        if obj is None:
            return ("public_id", "created_at")
        return ("public_id", "organization", "amount", "currency", "interval", "interval_count", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_at = clock.now()
        super().save_model(request, obj, form, change)


@admin.register(Coupon)
class CouponAdmin(admin.ModelAdmin):
    list_display = ("public_id", "code", "organization", "percent_off", "amount_off", "duration", "active")
    list_filter = ("active", "duration")
    search_fields = ("public_id", "code", "name")
    list_select_related = ("organization",)
    raw_id_fields = ("organization",)
    filter_horizontal = ("plans",)

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("public_id", "times_redeemed", "created_at")
        return ("public_id", "organization", "code", "percent_off", "amount_off", "currency", "duration",
                "duration_in_periods", "times_redeemed", "created_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_at = clock.now()
        super().save_model(request, obj, form, change)
