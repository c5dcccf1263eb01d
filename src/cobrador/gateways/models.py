from django.db import models

from cobrador.core.crypto import EncryptedJSONField
from cobrador.core.ids import public_id_default, random_token


def _callback_token() -> str:
    return random_token(32)


class GatewayConfig(models.Model):
    """An organization's account at one provider, and the payment methods it serves.

    Credentials are encrypted at rest and write-only through the API. The callback URL is
    /v1/callbacks/<provider>/<callback_token>; the token names this configuration.
    """

    PROVIDERS = [("sandbox", "sandbox"), ("pagarme", "pagarme"), ("kobana", "kobana")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("gw"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="gateways")
    provider = models.CharField(max_length=10, choices=PROVIDERS)
    methods = models.JSONField(default=list)  # subset of card, bank_slip, pix; one config per (org, method)
    # Provider-specific: pagarme {secret_key}, kobana {api_token, webhook_secret, pix_account_uid},
    # sandbox {webhook_secret}. Never returned by the API.
    credentials = EncryptedJSONField(blank=True, default=dict)
    # Non-secret settings: base_url override (tests point it at the fakes), jwks_url (Pagar.me).
    options = models.JSONField(default=dict, blank=True)
    callback_token = models.CharField(max_length=64, unique=True, default=_callback_token)
    active = models.BooleanField(default=True)
    # The built-in sandbox configuration a test-mode organization gets on demand: it serves any method
    # no other active configuration serves, and never counts against "one configuration per method".
    is_fallback = models.BooleanField(default=False)
    # DELETE /v1/gateways/{id} hides and deactivates a configuration but keeps the row: its payments
    # point at it and late callbacks for them must still verify.
    deleted_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization"], condition=models.Q(is_fallback=True),
                                    name="one_fallback_sandbox_per_organization"),
        ]

    def __str__(self):
        return f"{self.provider} for {self.organization_id} ({', '.join(self.methods)})"


class SandboxCharge(models.Model):
    """A charge at the built-in sandbox provider. The sandbox keeps its own table, like a real provider
    keeps its own database, so its idempotency holds across processes: one row per idempotency key."""

    STATUSES = [(s, s) for s in ("succeeded", "failed", "pending", "canceled", "refunded")]

    provider_charge_id = models.CharField(max_length=40, unique=True, default=public_id_default("sbx_ch"))
    gateway = models.ForeignKey(GatewayConfig, on_delete=models.CASCADE, related_name="sandbox_charges")
    idempotency_key = models.CharField(max_length=255, unique=True)
    reference = models.CharField(max_length=100, db_index=True)  # our payment public id
    method = models.CharField(max_length=10)
    amount = models.BigIntegerField()
    amount_refunded = models.BigIntegerField(default=0)
    currency = models.CharField(max_length=3, default="BRL")
    status = models.CharField(max_length=10, choices=STATUSES)
    card_token = models.CharField(max_length=100, blank=True, default="")
    failure_code = models.CharField(max_length=64, blank=True, default="")
    # What the adapter answered when the charge was made ("" = the stored status; "unknown" = the
    # scripted timeout / 500 after the charge went through). Replays answer the same.
    answered = models.CharField(max_length=10, blank=True, default="")
    refund_keys = models.JSONField(default=list, blank=True)  # idempotency keys of refunds already made
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField()
    paid_at = models.DateTimeField(null=True, blank=True)
    canceled_at = models.DateTimeField(null=True, blank=True)

    def __str__(self):
        return f"{self.provider_charge_id} {self.method} {self.status}"
