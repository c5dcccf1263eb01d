from django.db import models

from cobrador.core.ids import public_id_default


class Proposal(models.Model):
    """An offer of one or more subscriptions to an existing billing account or a prospect.

    `expires_on` is the last valid day in the organization's time zone: the proposal can be accepted
    all that day there, and the proposal-expiration sweep expires it from the next local midnight on.
    Only a draft is editable; each transition stamps its `*_at`.
    """

    STATUSES = [(s, s) for s in ("draft", "sent", "viewed", "accepted", "declined", "expired", "canceled")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("prop"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="proposals", db_index=False)
    number = models.PositiveIntegerField()  # 1, 2, ... per organization
    # An existing account, or a prospect (prospect_*) that becomes an account on acceptance.
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.PROTECT, null=True, blank=True,
                                related_name="proposals")
    prospect_name = models.CharField(max_length=200, blank=True, default="")
    prospect_email = models.EmailField(blank=True, default="")
    prospect_document = models.CharField(max_length=14, blank=True, default="")
    prospect_locale = models.CharField(max_length=5, default="pt-BR")
    currency = models.CharField(max_length=3)
    subtotal = models.BigIntegerField(default=0)  # the first paid period of every line
    discount = models.BigIntegerField(default=0)
    total = models.BigIntegerField(default=0)
    expires_on = models.DateField()
    message = models.TextField(blank=True, default="")
    status = models.CharField(max_length=10, choices=STATUSES, default="draft")
    sent_at = models.DateTimeField(null=True, blank=True)
    first_viewed_at = models.DateTimeField(null=True, blank=True)
    last_viewed_at = models.DateTimeField(null=True, blank=True)
    view_count = models.PositiveIntegerField(default=0)
    accepted_at = models.DateTimeField(null=True, blank=True)
    declined_at = models.DateTimeField(null=True, blank=True)
    decline_reason = models.CharField(max_length=500, blank=True, default="")
    expired_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "number"], name="proposal_number_per_org")]
        indexes = [
            # The sweeps: open proposals by their last valid day.
            models.Index(fields=["status", "expires_on"]),
            models.Index(fields=["organization", "sent_at"]),
        ]

    def __str__(self):
        return self.public_id


class ProposalLine(models.Model):
    """One subscription the proposal offers: a plan of the catalog with its terms."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="lines")
    position = models.PositiveSmallIntegerField()
    plan = models.ForeignKey("catalog.Plan", on_delete=models.PROTECT, related_name="+")
    quantity = models.PositiveIntegerField(default=1)
    coupon = models.ForeignKey("catalog.Coupon", on_delete=models.PROTECT, null=True, blank=True, related_name="+")
    commitment_months = models.PositiveSmallIntegerField(default=0)
    trial_days = models.PositiveSmallIntegerField(null=True, blank=True)  # None: the plan's
    unit_amount = models.BigIntegerField()  # price_override, else the plan's amount
    # A price per unit agreed in this proposal instead of the plan's amount; on acceptance it becomes the
    # subscription's unit_amount (subscriptions.services.create_subscription).
    price_override = models.BigIntegerField(null=True, blank=True)
    amount = models.BigIntegerField()  # unit_amount × quantity
    discount = models.BigIntegerField(default=0)  # the coupon on the first paid period
    subscription = models.OneToOneField("subscriptions.Subscription", on_delete=models.SET_NULL, null=True,
                                        blank=True, related_name="proposal_line")

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["proposal", "position"], name="proposal_line_position")]


class ProposalReminder(models.Model):
    """A reminder sent `days_before` the last valid day `expires_on`: the unique key makes each one go
    out once per proposal across reruns and concurrent workers, and a new `expires_on` starts afresh."""

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="reminders")
    expires_on = models.DateField()
    days_before = models.PositiveSmallIntegerField()
    sent_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["proposal", "expires_on", "days_before"],
                                               name="proposal_reminder_once")]


class ProposalView(models.Model):
    """One view of, or click on, the hosted proposal page."""

    KINDS = [("view", "view"), ("accept", "accept"), ("decline", "decline")]

    proposal = models.ForeignKey(Proposal, on_delete=models.CASCADE, related_name="views")
    kind = models.CharField(max_length=8, choices=KINDS)
    at = models.DateTimeField()
    user_agent_hash = models.CharField(max_length=64, blank=True, default="")


class ProposalSettings(models.Model):
    """An organization's proposal policy (GET/PATCH /v1/organizations/settings/proposals)."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="proposal_settings")
    reminder_days = models.JSONField(default=list)  # days before the last valid day, e.g. [3, 1]
    updated_at = models.DateTimeField()

    DEFAULT_REMINDER_DAYS = [3, 1]
