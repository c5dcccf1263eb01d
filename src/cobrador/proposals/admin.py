from django.contrib import admin

from cobrador.proposals.models import Proposal, ProposalLine, ProposalReminder


class ProposalLineInline(admin.TabularInline):
    model = ProposalLine
    extra = 0
    fields = ("position", "plan", "quantity", "unit_amount", "amount", "coupon", "discount", "commitment_months",
              "trial_days", "subscription")
    readonly_fields = fields
    can_delete = False


class ProposalReminderInline(admin.TabularInline):
    model = ProposalReminder
    extra = 0
    fields = ("expires_on", "days_before", "sent_at")
    readonly_fields = fields
    can_delete = False


@admin.register(Proposal)
class ProposalAdmin(admin.ModelAdmin):
    list_display = ("public_id", "organization", "number", "status", "total", "expires_on", "sent_at")
    list_filter = ("status",)
    search_fields = ("public_id", "prospect_email", "account__public_id")
    raw_id_fields = ("organization", "account")
    readonly_fields = ("public_id", "number", "sent_at", "first_viewed_at", "last_viewed_at", "view_count",
                       "accepted_at", "declined_at", "expired_at", "canceled_at", "created_at", "updated_at")
    inlines = [ProposalLineInline, ProposalReminderInline]
