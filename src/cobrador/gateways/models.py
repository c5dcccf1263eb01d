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
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()

    def __str__(self):
        return f"{self.provider} for {self.organization_id} ({', '.join(self.methods)})"
