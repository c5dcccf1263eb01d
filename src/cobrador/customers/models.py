from django.db import models
from django.db.models import Q

from cobrador.core.ids import public_id_default


class BillingAccount(models.Model):
    """A customer of an organization: who is billed, where to reach them, their tax document."""

    STATUSES = [("active", "active"), ("suspended", "suspended")]
    LOCALES = [("pt-BR", "pt-BR"), ("en", "en")]
    DOCUMENT_TYPES = [("cpf", "CPF"), ("cnpj", "CNPJ")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("ba"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE,
                                     related_name="billing_accounts")
    name = models.CharField(max_length=200)
    email = models.EmailField()
    document = models.CharField(max_length=14, blank=True, default="")  # digits (CNPJ may hold letters), no mask
    document_type = models.CharField(max_length=4, choices=DOCUMENT_TYPES, blank=True, default="")
    # {"street", "number", "complement", "neighborhood", "city", "state", "zipcode", "country"}
    address = models.JSONField(default=dict, blank=True)
    # Fiscal data for the NFS-e (the borrower): the legal name and e-mail the note carries when they
    # differ from `name` and `email`; the address's city_code (IBGE) is what NFe.io also needs.
    legal_name = models.CharField(max_length=115, blank=True, default="")
    fiscal_email = models.EmailField(blank=True, default="")
    locale = models.CharField(max_length=5, choices=LOCALES, default="pt-BR")
    status = models.CharField(max_length=10, choices=STATUSES, default="active")
    suspended_at = models.DateTimeField(null=True, blank=True)
    suspension_reason = models.CharField(max_length=500, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["organization", "status"]), models.Index(fields=["organization", "email"])]

    def __str__(self):
        return f"{self.name} ({self.public_id})"


class PaymentMethod(models.Model):
    """How an account pays: a stored card (gateway token, never the number), boleto or PIX."""

    TYPES = [("card", "card"), ("bank_slip", "bank_slip"), ("pix", "pix")]
    STATUSES = [("active", "active"), ("detached", "detached")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("pm"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="payment_methods")
    type = models.CharField(max_length=10, choices=TYPES)
    card_brand = models.CharField(max_length=20, blank=True, default="")
    card_last4 = models.CharField(max_length=4, blank=True, default="")
    exp_month = models.PositiveSmallIntegerField(null=True, blank=True)
    exp_year = models.PositiveSmallIntegerField(null=True, blank=True)
    gateway_token = models.CharField(max_length=200, blank=True, default="")
    is_default = models.BooleanField(default=False)
    # Given for one payment (a hosted invoice page's "pay now" with "save this card" unticked): never the
    # default, never retried with by dunning, and detached once that payment is made.
    single_use = models.BooleanField(default=False)
    status = models.CharField(max_length=10, choices=STATUSES, default="active")
    created_at = models.DateTimeField()
    detached_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["account"], condition=Q(is_default=True, status="active"),
                                               name="one_default_payment_method")]

    def __str__(self):
        if self.type == "card":
            return f"{self.card_brand} ****{self.card_last4} ({self.public_id})"
        return f"{self.type} ({self.public_id})"


class CreditGrant(models.Model):
    """A grant of account credit. `remaining` shrinks as invoices consume it; never below zero."""

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("cr"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE)
    account = models.ForeignKey(BillingAccount, on_delete=models.CASCADE, related_name="credit_grants")
    amount = models.BigIntegerField()
    remaining = models.BigIntegerField()
    currency = models.CharField(max_length=3, default="BRL")
    reason = models.CharField(max_length=200, blank=True, default="")
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(amount__gt=0), name="credit_grant_positive"),
            models.CheckConstraint(condition=Q(remaining__gte=0) & Q(remaining__lte=models.F("amount")),
                                   name="credit_remaining_in_range"),
        ]
        indexes = [models.Index(fields=["account", "currency", "remaining"])]


class CreditUsage(models.Model):
    """Credit consumed from one grant by one invoice: the other half of the ledger."""

    grant = models.ForeignKey(CreditGrant, on_delete=models.CASCADE, related_name="usages")
    invoice = models.ForeignKey("invoicing.Invoice", on_delete=models.CASCADE, related_name="credit_usages")
    amount = models.BigIntegerField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gt=0), name="credit_usage_positive")]
