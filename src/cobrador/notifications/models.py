from django.db import models

from cobrador.core.crypto import EncryptedTextField
from cobrador.core.ids import public_id_default


class NotificationSettings(models.Model):
    """An organization's communication schedule and rules (GET/PATCH /v1/organizations/settings/notifications).
    Created on first use with DEFAULTS; semantics are documented on the API schema."""

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("ns"))
    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="notification_settings")
    invoice_due_soon_days = models.PositiveSmallIntegerField(default=3)
    invoice_overdue_days = models.JSONField(default=list)
    trial_ending_days = models.PositiveSmallIntegerField(default=3)
    card_expiring_days = models.JSONField(default=list)
    update_card_url = models.CharField(max_length=2048, blank=True, default="")
    confirm_renewal_url = models.CharField(max_length=2048, blank=True, default="")
    mandatory_types = models.JSONField(default=list)  # types customers cannot opt out of
    organization_locale = models.CharField(max_length=5, default="pt-BR")  # cobrador's own mails to the org
    updated_at = models.DateTimeField()

    DEFAULTS = {
        "invoice_due_soon_days": 3,
        "invoice_overdue_days": [1, 7],
        "trial_ending_days": 3,
        "card_expiring_days": [30],
        "update_card_url": "",
        "confirm_renewal_url": "",
        "mandatory_types": [],
        "organization_locale": "pt-BR",
    }

    class Meta:
        verbose_name_plural = "notification settings"

    def __str__(self):
        return f"notification settings of {self.organization_id}"


class NotificationTemplate(models.Model):
    """An organization's own template for one (type, locale); without one the shipped default is used."""

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("ntpl"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="notification_templates")
    type = models.CharField(max_length=40)
    locale = models.CharField(max_length=5)
    subject = models.TextField()
    html_body = models.TextField()
    text_body = models.TextField()
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "type", "locale"],
                                               name="notification_template_once")]

    def __str__(self):
        return f"{self.type} ({self.locale})"


class AccountNotificationSettings(models.Model):
    """Where a billing account's own systems receive notices as signed webhooks (optional)."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    account = models.OneToOneField("customers.BillingAccount", on_delete=models.CASCADE,
                                   related_name="notification_settings")
    webhook_url = models.URLField(max_length=2048, blank=True, default="")
    webhook_secret = EncryptedTextField(blank=True, default="")
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name_plural = "account notification settings"

    def __str__(self):
        return f"notification settings of {self.account_id}"


class NotificationOptOut(models.Model):
    """A billing account does not want `type` over `channel` (ignored for the organization's mandatory types)."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE,
                                related_name="notification_opt_outs")
    type = models.CharField(max_length=40)
    channel = models.CharField(max_length=10)
    source = models.CharField(max_length=20, default="api")  # api | unsubscribe_link
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account", "type", "channel"], name="notification_opt_out_once")]

    def __str__(self):
        return f"{self.account_id}: no {self.type} by {self.channel}"


class Notice(models.Model):
    """One notification over one channel: an outbox row written in the business transaction.

    `dedupe_key` (type, entity, period, channel) is unique, so a rerun or a second worker never writes
    a second notice. Workers claim due rows by pushing `next_attempt_at` one lease ahead; a killed
    worker's rows become due again and are sent by another worker with the same Message-ID.
    """

    STATUSES = [(s, s) for s in ("pending", "sent", "failed", "parked")]
    CHANNELS = [(c, c) for c in ("email", "in_app", "webhook")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("ntf"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="notices", db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, null=True, blank=True,
                                related_name="notices", db_index=False)
    type = models.CharField(max_length=40)
    channel = models.CharField(max_length=10, choices=CHANNELS)
    dedupe_key = models.CharField(max_length=255, unique=True)
    locale = models.CharField(max_length=5, default="pt-BR")
    recipient = models.CharField(max_length=2048, blank=True, default="")  # e-mail address or webhook URL
    context = models.JSONField(default=dict)  # plain data for the templates
    link = models.CharField(max_length=2048, blank=True, default="")
    is_test = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_error = models.CharField(max_length=1000, blank=True, default="")
    subject = models.CharField(max_length=500, blank=True, default="")  # as rendered, for in-app notices
    body_text = models.TextField(blank=True, default="")  # as rendered, for in-app notices
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["account", "channel", "-id"]),
            models.Index(fields=["organization", "type", "locale", "status"]),
        ]

    def __str__(self):
        return f"{self.type} by {self.channel} ({self.public_id})"
