from django.db import models

from cobrador.core.ids import public_id_default


class Subscription(models.Model):
    """An account on a plan, renewing period after period.

    `billing_anchor_day` is the day of month periods start on; a 31st falls on the last day of
    shorter months. Changes of plan or quantity wait in `pending_*` until the next period.
    """

    STATUSES = [(s, s) for s in ("trialing", "active", "past_due", "paused", "canceled", "expired")]
    RENEWAL_MODES = [("auto", "auto"), ("prompt", "prompt")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("sub"))
    # Foreign keys without their own index where a composite index leads with them, or where the
    # lookup is rare (deleting a coupon or plan): every index costs each renewal's row update.
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="subscriptions", db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="subscriptions")
    plan = models.ForeignKey("catalog.Plan", on_delete=models.PROTECT, related_name="subscriptions")
    quantity = models.PositiveIntegerField(default=1)
    coupon = models.ForeignKey("catalog.Coupon", on_delete=models.PROTECT, null=True, blank=True, db_index=False)
    coupon_periods_used = models.PositiveIntegerField(default=0)
    payment_method = models.ForeignKey("customers.PaymentMethod", on_delete=models.SET_NULL, null=True, blank=True,
                                       db_index=False)
    status = models.CharField(max_length=10, choices=STATUSES)
    trial_end = models.DateTimeField(null=True, blank=True)
    started_at = models.DateTimeField()  # start of the first period (the trial's, if any)
    current_period_start = models.DateTimeField()
    current_period_end = models.DateTimeField()
    billing_anchor_day = models.PositiveSmallIntegerField()
    commitment_months = models.PositiveSmallIntegerField(default=0)
    # A price per unit agreed for this subscription (a proposal's price override) instead of its plan's
    # amount; it belongs to the plan it was agreed for: a change of plan drops it.
    unit_amount = models.BigIntegerField(null=True, blank=True)
    commitment_end = models.DateTimeField(null=True, blank=True)  # end of the current term
    renewal_mode = models.CharField(max_length=6, choices=RENEWAL_MODES, default="auto")
    renewal_confirmed_at = models.DateTimeField(null=True, blank=True)  # prompt mode, for the current term
    renewal_prompted_at = models.DateTimeField(null=True, blank=True)  # prompt sent for the current term
    # The trial_end that subscription.trial_will_end went out for (a trial moved later is warned again).
    trial_will_end_sent_for = models.DateTimeField(null=True, blank=True)
    cancel_at_period_end = models.BooleanField(default=False)
    cancel_at = models.DateTimeField(null=True, blank=True)
    cancellation_reason = models.CharField(max_length=500, blank=True, default="")
    canceled_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    pending_plan = models.ForeignKey("catalog.Plan", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="+", db_index=False)
    pending_quantity = models.PositiveIntegerField(null=True, blank=True)
    # Start of the earliest paid period the renewal sweep advanced past before it was invoiced
    # (sweeps missed for a whole period); invoice generation bills from here, then clears it.
    uninvoiced_since = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["status", "current_period_end"]),
            models.Index(fields=["status", "cancel_at"]),
            models.Index(fields=["status", "trial_end"]),
            models.Index(fields=["status", "commitment_end"]),
            models.Index(fields=["organization", "status"]),
        ]

    def __str__(self):
        return self.public_id


class SubscriptionSettings(models.Model):
    """An organization's subscription policy. Read and changed through GET/PATCH
    /v1/organizations/settings/notifications, where clients have always found `renewal_prompt_days`;
    an organization without a row uses COBRADOR_RENEWAL_PROMPT_DAYS."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="subscription_settings")
    # Days before a prompt-mode term ends that subscription.renewal_prompted goes out.
    renewal_prompt_days = models.PositiveSmallIntegerField()
    updated_at = models.DateTimeField()

    def __str__(self):
        return f"subscription settings of {self.organization_id}"
