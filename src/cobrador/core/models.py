from django.db import models


class IdempotencyRecord(models.Model):
    """A write made with an `Idempotency-Key`: the stored response is replayed for 24 h."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    key = models.CharField(max_length=255)
    request_fingerprint = models.CharField(max_length=64)
    response_status = models.PositiveSmallIntegerField(null=True)
    response_body = models.BinaryField(null=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "key"], name="idempotency_key_once")]
        indexes = [models.Index(fields=["created_at"])]


class EncryptionCanary(models.Model):
    """One encrypted known value: lets startup tell a wrong or lost encryption key apart at once."""

    token = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
