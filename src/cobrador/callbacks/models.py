from django.db import models

from cobrador.core.ids import public_id_default


class GatewayCallback(models.Model):
    """An inbound provider callback, stored raw before we answer 2xx, then processed asynchronously."""

    STATUSES = [(s, s) for s in ("received", "processing", "processed", "failed", "rejected", "ignored")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("cb"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, null=True, blank=True)
    gateway = models.ForeignKey("gateways.GatewayConfig", on_delete=models.SET_NULL, null=True, blank=True)
    provider = models.CharField(max_length=10)
    event_id = models.CharField(max_length=200, blank=True, default="")  # empty for rejected/unparseable
    event_type = models.CharField(max_length=100, blank=True, default="")
    headers = models.JSONField(default=dict)  # signature headers included; never logged
    body = models.BinaryField()
    status = models.CharField(max_length=10, choices=STATUSES, default="received")
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    changes = models.JSONField(default=list, blank=True)  # a log of what processing changed
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["provider", "event_id"], condition=~models.Q(event_id=""),
                                    name="callback_once_per_provider_event"),
        ]
        indexes = [models.Index(fields=["status", "next_attempt_at"]), models.Index(fields=["organization", "-id"]),
                   # Each received callback asks whether one received recently is still waiting: one probe
                   # here, however many older ones wait (workers behind or down).
                   models.Index(fields=["status", "received_at"])]

    def __str__(self):
        return f"{self.provider} {self.event_type} {self.event_id}"
