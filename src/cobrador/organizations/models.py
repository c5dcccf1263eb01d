from django.db import models

from cobrador.core.ids import public_id_default


class Organization(models.Model):
    """A tenant: one SaaS company billing its customers through cobrador."""

    MODES = [("test", "test"), ("live", "live")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("org"))
    name = models.CharField(max_length=200)
    mode = models.CharField(max_length=4, choices=MODES, default="test")
    timezone = models.CharField(max_length=64, default="America/Sao_Paulo")
    default_currency = models.CharField(max_length=3, default="BRL")
    billing_email = models.EmailField(blank=True, default="")
    created_at = models.DateTimeField()

    def __str__(self):
        return f"{self.name} ({self.public_id})"


class ApiKey(models.Model):
    """A secret API key, stored as its SHA-256 hash; the plaintext is shown once at creation."""

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("key"))
    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True, default="")
    key_hash = models.CharField(max_length=64, unique=True)
    last4 = models.CharField(max_length=4)
    created_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"sk_{self.organization.mode}_...{self.last4}"


class DunningConfig(models.Model):
    """The organization's dunning policy. Semantics are documented on the API schema."""

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("dc"))
    organization = models.OneToOneField(Organization, on_delete=models.CASCADE, related_name="dunning_config")
    max_retries = models.PositiveSmallIntegerField(default=5)
    retry_interval_days = models.JSONField(default=list)
    suspend_after_retries = models.BooleanField(default=True)
    grace_period_days = models.PositiveSmallIntegerField(default=30)
    auto_retry_enabled = models.BooleanField(default=True)
    retry_payment_methods = models.JSONField(default=list)
    updated_at = models.DateTimeField()

    DEFAULTS = {
        "max_retries": 5,
        "retry_interval_days": [1, 2, 3, 5, 7],
        "suspend_after_retries": True,
        "grace_period_days": 30,
        "auto_retry_enabled": True,
        "retry_payment_methods": ["card", "bank_slip", "pix"],
    }

    def interval_before_retry(self, k: int) -> int:
        """Days between the failure before retry k (1-based) and retry k: a shorter list repeats its last entry."""
        intervals = self.retry_interval_days
        return intervals[min(k, len(intervals)) - 1]


class Membership(models.Model):
    """A person of the organization: a Django user who may sign in to its dashboard (/dashboard/). A user
    may belong to several organizations; staff users may open any organization without one."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey("auth.User", on_delete=models.CASCADE, related_name="memberships")
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "organization"], name="membership_once")]

    def __str__(self):
        return f"{self.user} in {self.organization}"
