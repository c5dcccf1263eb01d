from django.contrib import admin

from cobrador.subscriptions.models import Subscription


@admin.register(Subscription)
class SubscriptionAdmin(admin.ModelAdmin):
    list_display = ("public_id", "account", "plan", "status", "current_period_end", "renewal_mode", "cancel_at")
    list_filter = ("status", "renewal_mode", "cancel_at_period_end")
    search_fields = ("public_id", "account__public_id", "account__name", "account__email")
    list_select_related = ("organization", "account", "plan")
    raw_id_fields = ("organization", "account", "plan", "coupon", "payment_method", "pending_plan")
    # Periods and terms are the sweeps' business: operators read them, the API changes the rest.
    readonly_fields = ("public_id", "started_at", "current_period_start", "current_period_end", "billing_anchor_day",
                       "commitment_end", "renewal_prompted_at", "renewal_confirmed_at", "coupon_periods_used",
                       "uninvoiced_since", "canceled_at", "ended_at", "created_at", "updated_at")
