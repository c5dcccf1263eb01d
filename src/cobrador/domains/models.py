from django.db import models
from django.db.models import Q

from cobrador.core.crypto import EncryptedTextField
from cobrador.core.ids import public_id_default, random_token


def _verification_token() -> str:
    return "cobrador-verify=" + random_token(32)


class CustomDomain(models.Model):
    """A hostname an organization serves its hosted pages on.

    pending -> verified (TXT ownership, routing and CAA are right) -> active (a certificate is published);
    pending -> failed after 72 h of waiting for DNS; active -> inactive when its records are gone (after a
    warning); any -> removed (DELETE). Every change stamps `status_changed_at`, `reason` and `message` and
    leaves a CustomDomainChange row. A hostname belongs to one organization among the domains not removed.
    """

    STATUSES = [(s, s) for s in ("pending", "verified", "active", "failed", "inactive", "removed")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("cd"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    hostname = models.CharField(max_length=253)  # lower-case, IDNA (A-labels), no trailing dot
    verification_token = models.CharField(max_length=64, default=_verification_token)
    status = models.CharField(max_length=10, choices=STATUSES, default="pending")
    reason = models.CharField(max_length=40, blank=True, default="")
    message = models.TextField(blank=True, default="")
    status_changed_at = models.DateTimeField()
    # The 72 h of waiting for DNS count from here (creation, or a manual verify of a failed domain).
    pending_since = models.DateTimeField()
    dns_checks = models.PositiveIntegerField(default=0)  # consecutive checks in the current state
    next_dns_check_at = models.DateTimeField(null=True, blank=True)
    last_dns_check_at = models.DateTimeField(null=True, blank=True)
    dns_observed = models.JSONField(default=dict, blank=True)  # what the names resolved to at the last check
    dns_missing_since = models.DateTimeField(null=True, blank=True)  # an active domain whose records are gone
    verified_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    # The certificate being served (and its key), encrypted at rest.
    certificate_pem = EncryptedTextField(blank=True, default="")
    private_key_pem = EncryptedTextField(blank=True, default="")
    certificate_serial = models.CharField(max_length=80, blank=True, default="")
    certificate_not_before = models.DateTimeField(null=True, blank=True)
    certificate_not_after = models.DateTimeField(null=True, blank=True)
    renew_at = models.DateTimeField(null=True, blank=True)  # ARI's chosen time, or the fallback rule's
    # ACME: when the ssl job next looks at the domain (issue or renew), the attempt in flight and failures.
    next_ssl_attempt_at = models.DateTimeField(null=True, blank=True)
    ssl_claimed_until = models.DateTimeField(null=True, blank=True)  # one order in flight per domain
    ssl_claim = models.CharField(max_length=32, blank=True, default="")
    ssl_failures = models.PositiveIntegerField(default=0)  # consecutive failed orders
    ssl_error = models.TextField(blank=True, default="")
    failed_validations = models.JSONField(default=list, blank=True)  # times of recent failed validations
    renewal_failure_notified_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["hostname"], condition=~Q(status="removed"),
                                    name="custom_domain_hostname_once"),
        ]
        indexes = [
            models.Index(fields=["organization", "-id"]),
            models.Index(fields=["next_dns_check_at"], condition=Q(next_dns_check_at__isnull=False),
                         name="custom_domain_dns_due"),
            models.Index(fields=["next_ssl_attempt_at"], condition=Q(next_ssl_attempt_at__isnull=False),
                         name="custom_domain_ssl_due"),
        ]

    def __str__(self):
        return f"{self.hostname} ({self.status})"


class CustomDomainChange(models.Model):
    """Each status change of a domain, stamped, with its reason code and message (the domain's history)."""

    domain = models.ForeignKey(CustomDomain, on_delete=models.CASCADE, related_name="changes")
    from_status = models.CharField(max_length=10)
    to_status = models.CharField(max_length=10)
    reason = models.CharField(max_length=40)
    message = models.TextField(blank=True, default="")
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.from_status} -> {self.to_status} ({self.reason})"


class AcmeAccount(models.Model):
    """The installation's ACME account at one directory: its key encrypted at rest."""

    directory_url = models.CharField(max_length=500, unique=True)
    key_pem = EncryptedTextField()
    uri = models.CharField(max_length=500)
    created_at = models.DateTimeField()

    def __str__(self):
        return self.uri


class AcmeChallenge(models.Model):
    """An HTTP-01 answer `cobrador web` serves at /.well-known/acme-challenge/<token> while an order runs."""

    token = models.CharField(max_length=128, unique=True)
    key_authorization = models.CharField(max_length=300)
    hostname = models.CharField(max_length=253)
    created_at = models.DateTimeField()

    def __str__(self):
        return self.token
