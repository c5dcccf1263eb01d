"""Dunning: the retry schedule of each unpaid invoice, the delinquency case of each account, and the
audit trail of every recovery attempt. The policy's semantics are in organizations/schemas.py."""

from django.db import models
from django.db.models import Q

from cobrador.core.ids import public_id_default


class DelinquentAccount(models.Model):
    """An account's delinquency case: opened by the first failed charge of an open invoice, closed as
    `recovered` when no overdue invoice is left, or `written_off` by an operator. `suspended` is still
    open. One open case (open or suspended) per account."""

    STATUSES = [(s, s) for s in ("open", "suspended", "recovered", "written_off")]
    OPEN_STATUSES = ("open", "suspended")

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("dla"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="delinquent_accounts")
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE,
                                related_name="delinquencies")
    status = models.CharField(max_length=12, choices=STATUSES, default="open")
    opened_at = models.DateTimeField()
    overdue_invoice_count = models.PositiveIntegerField(default=0)
    overdue_amount = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="BRL")
    suspended_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account"], condition=Q(status__in=["open", "suspended"]),
                                               name="one_open_delinquency_per_account")]
        indexes = [models.Index(fields=["status", "opened_at"]), models.Index(fields=["organization", "-id"])]

    def __str__(self):
        return self.public_id


class DunningInvoice(models.Model):
    """The retry schedule of one invoice whose charge failed: which attempt is next and when.

    The payment-retry sweep selects `status=scheduled, next_attempt_at <= as_of` (one indexed query),
    claims a row by setting `running` with a lease, and hands it back `scheduled` for the next
    attempt, or `exhausted`. A `running` row whose lease ran out (a worker died) is claimed again; the
    unique (invoice, attempt, method) of RecoveryRecord makes the walk resume where it stopped.
    """

    STATUSES = [(s, s) for s in ("scheduled", "running", "exhausted", "recovered", "canceled", "failed")]
    # Retries may still happen (or are happening) for these.
    PENDING = ("scheduled", "running")
    # The invoice is still being chased (retries pending, or all used up but unpaid).
    ACTIVE = ("scheduled", "running", "exhausted", "failed")

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="+")
    invoice = models.OneToOneField("invoicing.Invoice", on_delete=models.CASCADE, related_name="dunning")
    delinquent_account = models.ForeignKey(DelinquentAccount, on_delete=models.CASCADE, related_name="invoices")
    status = models.CharField(max_length=10, choices=STATUSES, default="scheduled")
    opened_at = models.DateTimeField()  # when the first charge failed
    attempts_made = models.PositiveSmallIntegerField(default=0)  # retries done (the first charge is 0)
    next_attempt_number = models.PositiveSmallIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # The methods the next attempt walks, fixed when it was scheduled (a config change affects only
    # attempts not yet scheduled).
    next_methods = models.JSONField(default=list)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    lease_until = models.DateTimeField(null=True, blank=True)
    lease_token = models.CharField(max_length=32, blank=True, default="")
    # Cards (PaymentMethod pks) that were hard-declined for this invoice: never charged again for it.
    hard_declined_cards = models.JSONField(default=list)
    overdue_at = models.DateTimeField(null=True, blank=True)  # when invoice.overdue was emitted
    closed_at = models.DateTimeField(null=True, blank=True)
    # A sweep that keeps failing on this row: counted, and after MAX_ERRORS the row is `failed` (parked).
    error_count = models.PositiveSmallIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    MAX_ERRORS = 5

    class Meta:
        indexes = [
            models.Index(fields=["status", "next_attempt_at"]),
            models.Index(fields=["status", "lease_until"]),
            models.Index(fields=["account", "status"]),
        ]

    def __str__(self):
        return f"dunning of invoice {self.invoice_id} ({self.status})"


class RecoveryRecord(models.Model):
    """The audit trail: one row per payment method tried in one attempt to collect an invoice.

    Attempt 0 is the first charge that failed and opened dunning; attempts 1..max_retries are the
    retries. `processing` only while the gateway call of the method is in flight.
    """

    OUTCOMES = [(s, s) for s in ("processing", "succeeded", "failed", "issued", "skipped", "error")]
    METHODS = [("card", "card"), ("bank_slip", "bank_slip"), ("pix", "pix")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("rr"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="+")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.CASCADE, related_name="recovery_records",
                                db_index=False)
    attempt_number = models.PositiveSmallIntegerField()
    method = models.CharField(max_length=10, choices=METHODS)
    provider = models.CharField(max_length=10, blank=True, default="")
    payment = models.ForeignKey("payments.Payment", on_delete=models.SET_NULL, null=True, blank=True,
                                related_name="+")
    outcome = models.CharField(max_length=10, choices=OUTCOMES)
    decline_code = models.CharField(max_length=64, blank=True, default="")
    message = models.CharField(max_length=500, blank=True, default="")
    amount = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="BRL")
    attempted_at = models.DateTimeField()
    next_retry_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["invoice", "attempt_number", "method"],
                                               name="one_recovery_record_per_invoice_attempt_method")]
        indexes = [models.Index(fields=["organization", "-id"]),
                   models.Index(fields=["organization", "attempted_at"])]

    def __str__(self):
        return self.public_id
