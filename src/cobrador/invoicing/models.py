from django.db import models
from django.db.models import Q

from cobrador.core.ids import public_id_default


class InvoiceNumberSequence(models.Model):
    """The last invoice number per organization. Taken under a row lock in the invoice's own
    transaction, so a rolled-back invoice gives its number back and numbering stays gapless."""

    organization = models.OneToOneField("organizations.Organization", on_delete=models.CASCADE, primary_key=True)
    last_number = models.PositiveIntegerField(default=0)


class Invoice(models.Model):
    # Foreign keys that a composite index or unique constraint already leads with get no index of
    # their own (invoice generation inserts 100k rows a run; every index costs each insert).
    STATUSES = [(s, s) for s in ("draft", "open", "paid", "void", "uncollectible")]
    # charge: the payment jobs charge it (the invoice's method, else the subscription's, else the
    # account's default); send: the customer pays it from the invoice they are sent (one-off invoices).
    COLLECTION_METHODS = [("charge", "charge"), ("send", "send")]
    KINDS = [(k, k) for k in ("period", "proration", "one_off")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("in"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="invoices",
                                     db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="invoices",
                                db_index=False)
    subscription = models.ForeignKey("subscriptions.Subscription", on_delete=models.PROTECT, null=True, blank=True,
                                     related_name="invoices", db_index=False)
    number = models.PositiveIntegerField()
    kind = models.CharField(max_length=9, choices=KINDS, default="period", db_default="period")
    collection_method = models.CharField(max_length=6, choices=COLLECTION_METHODS, default="charge",
                                         db_default="charge")
    # The method to charge; unset (or no longer active): the subscription's, else the account's default.
    payment_method = models.ForeignKey("customers.PaymentMethod", on_delete=models.SET_NULL, null=True, blank=True,
                                       related_name="+", db_index=False)
    status = models.CharField(max_length=14, choices=STATUSES, default="open")
    currency = models.CharField(max_length=3, default="BRL")
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    subtotal = models.BigIntegerField()
    discount = models.BigIntegerField(default=0)
    credit_applied = models.BigIntegerField(default=0)
    total = models.BigIntegerField()  # subtotal - discount - credit_applied
    amount_paid = models.BigIntegerField(default=0)
    amount_due = models.BigIntegerField()  # total - amount_paid
    coupon = models.ForeignKey("catalog.Coupon", on_delete=models.SET_NULL, null=True, blank=True, db_index=False)
    due_date = models.DateField()
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    voided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subscription", "period_start"], name="invoice_per_subscription_period"),
            models.UniqueConstraint(fields=["organization", "number"], name="invoice_number_once"),
            models.CheckConstraint(condition=Q(total__gte=0) & Q(amount_due__gte=0) & Q(discount__gte=0)
                                   & Q(credit_applied__gte=0), name="invoice_amounts_not_negative"),
        ]
        indexes = [models.Index(fields=["organization", "status"]), models.Index(fields=["account", "status"])]

    def __str__(self):
        return f"#{self.number} {self.public_id}"


class InvoiceLine(models.Model):
    invoice = models.ForeignKey(Invoice, on_delete=models.CASCADE, related_name="lines")
    description = models.CharField(max_length=300)
    plan = models.ForeignKey("catalog.Plan", on_delete=models.SET_NULL, null=True, blank=True, db_index=False)
    quantity = models.PositiveIntegerField(default=1)
    unit_amount = models.BigIntegerField()
    amount = models.BigIntegerField()  # negative on a proration's credit line
    period_start = models.DateTimeField(null=True, blank=True)
    period_end = models.DateTimeField(null=True, blank=True)
    # The NFS-e service code of a one-off line, if any.
    service_code = models.CharField(max_length=20, blank=True, default="", db_default="")
