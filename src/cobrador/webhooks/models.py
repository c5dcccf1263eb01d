from django.db import models

from cobrador.core.crypto import EncryptedTextField
from cobrador.core.ids import public_id_default


class WebhookEndpoint(models.Model):
    """Where an organization receives its events, signed per Standard Webhooks with a `whsec_` secret."""

    STATUSES = [("enabled", "enabled"), ("disabled", "disabled")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("we"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="webhook_endpoints")
    url = models.URLField(max_length=2048)
    description = models.CharField(max_length=500, blank=True, default="")
    enabled_events = models.JSONField(default=list)  # ["*"] means every event type
    secret = EncryptedTextField()
    # After a rotation the old secret keeps signing beside the new one until this time.
    previous_secret = EncryptedTextField(blank=True, default="")
    previous_secret_expires_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=10, choices=STATUSES, default="enabled")
    disabled_reason = models.CharField(max_length=300, blank=True, default="")
    disabled_at = models.DateTimeField(null=True, blank=True)
    # Set at the first failure after a success; 5 days of failures in a row disable the endpoint.
    failing_since = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "status"])]

    def __str__(self):
        return f"{self.public_id} {self.url}"

    def wants(self, event_type: str) -> bool:
        return self.status == "enabled" and ("*" in self.enabled_events or event_type in self.enabled_events)


class WebhookDelivery(models.Model):
    """One event for one endpoint: an outbox row, drained by workers, with every attempt kept.

    A claimed row has `next_attempt_at` pushed one lease into the future, so the row of a worker
    that dies mid-delivery simply becomes due again and another worker sends it, same webhook-id.
    """

    STATUSES = [("pending", "pending"), ("succeeded", "succeeded"), ("failed", "failed")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("wd"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    event = models.ForeignKey("events.Event", on_delete=models.CASCADE, related_name="webhook_deliveries",
                              db_index=False)
    endpoint = models.ForeignKey(WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries",
                                 db_index=False)
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    attempt_count = models.PositiveIntegerField(default=0)
    # Attempts since the last replay: the retry schedule restarts when an operator replays.
    schedule_position = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claim_token = models.CharField(max_length=32, blank=True, default="")
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True, default="")
    created_at = models.DateTimeField()
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once")]
        indexes = [models.Index(fields=["status", "next_attempt_at"]),
                   models.Index(fields=["endpoint", "-id"]),
                   models.Index(fields=["finished_at"])]
        verbose_name_plural = "webhook deliveries"

    def __str__(self):
        return self.public_id


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(WebhookDelivery, on_delete=models.CASCADE, related_name="attempts")
    number = models.PositiveIntegerField()
    attempted_at = models.DateTimeField()
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    duration_ms = models.PositiveIntegerField(default=0)
    response_body = models.CharField(max_length=1024, blank=True, default="")  # first 1 KB
    error = models.CharField(max_length=500, blank=True, default="")
    succeeded = models.BooleanField(default=False)

    class Meta:
        ordering = ["number"]
