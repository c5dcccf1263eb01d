from django.db import models
from django.db.models import Q

from cobrador.core.ids import public_id_default


class Payment(models.Model):
    """One charge of one invoice through one method at one provider.

    `idempotency_key` goes to the provider with the request, so retrying the request can never charge
    twice. While an invoice has a payment `unknown` or `processing`, no new charge of it is made.
    """

    STATUSES = [(s, s) for s in ("pending", "processing", "succeeded", "failed", "unknown", "canceled", "refunded")]
    METHODS = [("card", "card"), ("bank_slip", "bank_slip"), ("pix", "pix")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("pay"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="payments",
                                     db_index=False)
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.PROTECT, related_name="payments", db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="payments")
    payment_method = models.ForeignKey("customers.PaymentMethod", on_delete=models.SET_NULL, null=True, blank=True)
    method = models.CharField(max_length=10, choices=METHODS)
    provider = models.CharField(max_length=10)
    gateway = models.ForeignKey("gateways.GatewayConfig", on_delete=models.PROTECT, null=True, blank=True)
    provider_charge_id = models.CharField(max_length=100, blank=True, default="")
    provider_order_id = models.CharField(max_length=100, blank=True, default="")
    amount = models.BigIntegerField()
    amount_paid = models.BigIntegerField(default=0)
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="BRL")
    status = models.CharField(max_length=10, choices=STATUSES, default="processing")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    failure_message = models.CharField(max_length=500, blank=True, default="")
    decline_class = models.CharField(max_length=4, blank=True, default="")  # hard | soft
    idempotency_key = models.CharField(max_length=100, unique=True)
    # What triggered it: "invoice" (first charge), "dunning" (a retry), "manual" (POST /pay), "page" (the
    # hosted invoice page's "pay now by card").
    source = models.CharField(max_length=10, default="invoice")
    attempt_number = models.PositiveSmallIntegerField(default=0)  # dunning attempt; 0 for the first charge
    # boleto / PIX documents
    boleto_url = models.URLField(max_length=1000, blank=True, default="")
    boleto_barcode = models.CharField(max_length=100, blank=True, default="")
    boleto_line = models.CharField(max_length=100, blank=True, default="")
    pix_copy_paste = models.TextField(blank=True, default="")
    pix_qr_code_url = models.URLField(max_length=1000, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    # reconciliation of unknown outcomes: 5 min, 1 h, then daily
    reconcile_attempts = models.PositiveSmallIntegerField(default=0)
    next_reconcile_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["invoice", "status"]),
            models.Index(fields=["status", "next_reconcile_at"]),
            models.Index(fields=["provider", "provider_charge_id"]),
            models.Index(fields=["organization", "-id"]),
        ]
        constraints = [
            # At most one charge in flight per invoice: the database, not the code, makes doubling impossible.
            models.UniqueConstraint(fields=["invoice"], condition=Q(status__in=["processing", "unknown"]),
                                    name="one_charge_in_flight_per_invoice"),
        ]

    def __str__(self):
        return self.public_id


class PaymentRefund(models.Model):
    """One refund of a payment (partial or full), made through the API.

    Like a charge: the row is written (`processing`, with its idempotency key) before the provider is
    called, and the answer is recorded after. An unknown answer is settled by sending the same request
    again with the same key, which the provider treats as the same refund.
    """

    STATUSES = [(s, s) for s in ("processing", "succeeded", "failed", "unknown")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("re"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    payment = models.ForeignKey(Payment, on_delete=models.CASCADE, related_name="refunds")
    amount = models.BigIntegerField()
    reason = models.CharField(max_length=500, blank=True, default="")
    status = models.CharField(max_length=10, choices=STATUSES, default="processing")
    idempotency_key = models.CharField(max_length=100, unique=True)
    failure_message = models.CharField(max_length=500, blank=True, default="")
    attempts = models.PositiveSmallIntegerField(default=1)
    next_attempt_at = models.DateTimeField(null=True, blank=True)  # for unknown / stuck refunds
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="refund_amount_positive")]
        indexes = [models.Index(fields=["status", "next_attempt_at"])]

    def __str__(self):
        return self.public_id


class ChargeQueueEntry(models.Model):
    """Invoices a transaction asked to charge as soon as it commits: payments/sink.py writes one row per
    transaction (a sign-up, a proration, a one-off invoice, a batch of the nightly run), in that
    transaction, so it exists only if the invoices do. Every worker's charge drainer
    (charging.charge_queued), woken by the commit's NOTIFY, deletes rows in the transaction that writes
    their payments, so a row is charged once and is never lost: a killed worker rolls both back."""

    invoice_ids = models.JSONField()  # invoices' public ids (in_...), at most charging.BATCH_SIZE
    created_at = models.DateTimeField()
