from django.db import models
from django.db.models import Q

from cobrador.core.crypto import EncryptedJSONField
from cobrador.core.ids import public_id_default, random_token


def _callback_token() -> str:
    return random_token(32)


class FiscalSettings(models.Model):
    """An organization's fiscal policy and its NFe.io company (GET/PATCH /v1/organizations/settings/fiscal).
    Created on first use with the defaults (policy `never`). Semantics are documented on the API schema."""

    POLICIES = [("never", "never"), ("on_invoice_created", "on_invoice_created"), ("on_payment", "on_payment")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("fs"))
    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE,
                                        related_name="fiscal_settings")
    policy = models.CharField(max_length=20, choices=POLICIES, default="never")
    nfeio_company_id = models.CharField(max_length=64, blank=True, default="")
    # {"api_key", "webhook_secret"}: write-only through the API, encrypted at rest.
    credentials = EncryptedJSONField(blank=True, default=dict)
    city_service_code = models.CharField(max_length=20, blank=True, default="")
    federal_service_code = models.CharField(max_length=20, blank=True, default="")
    description_template = models.TextField(blank=True, default="")
    iss_rate = models.DecimalField(max_digits=6, decimal_places=4, null=True, blank=True)  # a fraction: 0.05 = 5%
    iss_withheld = models.BooleanField(default=False)
    cancel_on_void = models.BooleanField(default=True)
    cancel_on_refund = models.BooleanField(default=True)
    # The NFe.io account webhook posts to /v1/callbacks/nfeio/<callback_token>.
    callback_token = models.CharField(max_length=64, unique=True, default=_callback_token)
    updated_at = models.DateTimeField()

    class Meta:
        verbose_name = verbose_name_plural = "fiscal settings"

    def __str__(self):
        return f"fiscal settings of {self.organization_id} ({self.policy})"


class ServiceInvoice(models.Model):
    """One NFS-e for one invoice (purpose `issue`), at NFe.io under `external_id`.

    pending -> processing -> issued | failed | blocked; then cancel_pending -> canceled | cancel_failed.
    A retry of a failed note gets a new external id (`<public_id>.<n>`): NFe.io keeps the failed one and
    refuses its external id again; only one note per invoice is ever issued.
    """

    STATUSES = [(s, s) for s in ("pending", "processing", "issued", "failed", "blocked", "cancel_pending",
                                 "canceled", "cancel_failed")]
    PURPOSES = [("issue", "issue")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("nfse"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.CASCADE, related_name="service_invoices",
                                db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="+")
    purpose = models.CharField(max_length=10, choices=PURPOSES, default="issue")
    status = models.CharField(max_length=14, choices=STATUSES, default="pending")
    environment = models.CharField(max_length=12)  # Development (test organizations) or Production
    external_id = models.CharField(max_length=60)
    amount = models.BigIntegerField()  # minor units; sent as reais
    currency = models.CharField(max_length=3, default="BRL")
    description = models.TextField(blank=True, default="")
    blocked_reason = models.CharField(max_length=500, blank=True, default="")
    # What NFe.io says about the note.
    nfeio_id = models.CharField(max_length=64, blank=True, default="")
    flow_status = models.CharField(max_length=40, blank=True, default="")
    flow_message = models.TextField(blank=True, default="")
    number = models.CharField(max_length=40, blank=True, default="")
    check_code = models.CharField(max_length=64, blank=True, default="")  # the municipal verification code
    access_key = models.CharField(max_length=50, blank=True, default="")  # the national 50-digit key
    pdf_url = models.CharField(max_length=2048, blank=True, default="")
    xml_url = models.CharField(max_length=2048, blank=True, default="")
    # The issue (or cancel) request went out at this time and its outcome is not settled: a worker that
    # dies after sending leaves it set, and the sync asks NFe.io (by external id) instead of sending again.
    sent_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)  # issue attempts: the external id's suffix
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # when nfe-sync looks at it again
    cancel_requested = models.BooleanField(default=False)  # to cancel once it is issued
    error = models.TextField(blank=True, default="")
    issued_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["invoice", "purpose"], name="one_service_invoice_per_invoice"),
            models.UniqueConstraint(fields=["organization", "external_id"], name="service_invoice_external_id_once"),
        ]
        indexes = [
            models.Index(fields=["organization", "-id"]),
            # What nfe-sync takes: unsettled notes by when they are due.
            models.Index(fields=["next_attempt_at"], condition=Q(next_attempt_at__isnull=False),
                         name="service_invoice_due"),
            models.Index(fields=["organization", "nfeio_id"]),
        ]

    def __str__(self):
        return f"{self.public_id} {self.status}"


class ServiceInvoiceCall(models.Model):
    """Every call made to NFe.io about a note, with its answer's status (the audit trail)."""

    service_invoice = models.ForeignKey(ServiceInvoice, on_delete=models.CASCADE, related_name="calls")
    operation = models.CharField(max_length=12)  # issue, fetch, lookup, cancel
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)  # null: no answer (timeout, reset)
    outcome = models.CharField(max_length=200, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    at = models.DateTimeField()

    def __str__(self):
        return f"{self.operation} {self.http_status}"
