"""Which gateway serves what: the two entry points payments/ and callbacks/ use.

    config = config_for_method(organization, "card")   # the GatewayConfig serving that method
    gateway = gateway_for(config)                       # an adapter implementing base.Gateway
"""

from django.db import IntegrityError, transaction

from cobrador.core import clock
from cobrador.core.ids import random_token
from cobrador.gateways.base import Gateway
from cobrador.gateways.errors import NoGatewayForMethod
from cobrador.gateways.kobana import KobanaGateway
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.pagarme import PagarmeGateway
from cobrador.gateways.sandbox import SandboxGateway

METHODS = ("card", "bank_slip", "pix")
PROVIDERS = ("sandbox", "pagarme", "kobana")
# What each provider can serve. Kobana has no cards.
PROVIDER_METHODS = {"sandbox": METHODS, "pagarme": METHODS, "kobana": ("bank_slip", "pix")}


def gateway_for(config: GatewayConfig) -> Gateway:
    """The adapter for `config` (its decrypted credentials and options)."""
    if config.provider == "sandbox":
        return SandboxGateway(config)
    if config.provider == "pagarme":
        return PagarmeGateway(config)
    if config.provider == "kobana":
        return KobanaGateway(config)
    raise ValueError(f"unknown provider {config.provider!r}")


def config_for_method(organization, method: str) -> GatewayConfig:
    """The active configuration serving `method` for `organization`.

    A test-mode organization without one is served by its built-in sandbox configuration, created on
    demand (one per organization, enforced by a unique constraint). A live-mode organization without one
    gets a Conflict (409) naming the method: live money never goes to the sandbox.
    """
    if method not in METHODS:
        raise ValueError(f"unknown payment method {method!r}")
    for config in GatewayConfig.objects.filter(organization=organization, active=True, is_fallback=False,
                                               deleted_at__isnull=True).order_by("id"):
        if method in config.methods:
            return config
    if organization.mode != "test":
        raise NoGatewayForMethod(f"no active gateway configuration serves {method}: create one with POST /v1/gateways",
                                 field="method")
    return fallback_sandbox_config(organization)


def fallback_sandbox_config(organization) -> GatewayConfig:
    existing = GatewayConfig.objects.filter(organization=organization, is_fallback=True).first()
    if existing is not None:
        return existing
    now = clock.now()
    try:
        with transaction.atomic():  # a savepoint: a concurrent creator wins and we read its row
            return GatewayConfig.objects.create(
                organization=organization, provider="sandbox", methods=list(METHODS), is_fallback=True,
                credentials={"webhook_secret": random_token(40)}, created_at=now, updated_at=now)
    except IntegrityError:
        return GatewayConfig.objects.get(organization=organization, is_fallback=True)
