"""Gateway configurations: which provider serves each payment method of an organization.

Credentials are encrypted at rest (EncryptedJSONField) and never leave through the API or the logs:
`gateway_data` names which credential fields are set, never their values. Services never commit.
"""

from django.conf import settings

from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.core.ids import random_token
from cobrador.gateways.errors import GatewayMethodTaken, SandboxGatewayReadOnly, SandboxNeedsTestMode
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.registry import METHODS, PROVIDER_METHODS
from cobrador.organizations.models import Organization

CREDENTIAL_FIELDS = {
    "sandbox": {"webhook_secret"},
    "pagarme": {"secret_key"},
    "kobana": {"api_token", "webhook_secret", "pix_account_uid"},
}
OPTION_FIELDS = {
    "sandbox": set(),
    "pagarme": {"timeout_seconds", "public_key"},
    "kobana": {"timeout_seconds", "pix_account_uid", "boleto", "boleto_days_to_due"},
}


def callback_url(config: GatewayConfig) -> str:
    return f"{settings.PUBLIC_URL}/v1/callbacks/{config.provider}/{config.callback_token}"


def methods_served(config: GatewayConfig) -> list[str]:
    """What a configuration serves now. The fallback sandbox serves what no other active one serves."""
    if not config.is_fallback:
        return list(config.methods)
    taken = set()
    for methods in GatewayConfig.objects.filter(organization_id=config.organization_id, active=True,
                                                is_fallback=False, deleted_at__isnull=True
                                                ).values_list("methods", flat=True):
        taken.update(methods)
    return [m for m in METHODS if m not in taken]


def gateway_data(config: GatewayConfig) -> dict:
    return {
        "id": config.public_id,
        "object": "gateway",
        "provider": config.provider,
        "methods": methods_served(config),
        "active": config.active,
        "fallback": config.is_fallback,
        "options": dict(config.options or {}),
        "credentials_set": sorted(k for k, v in (config.credentials or {}).items() if v),
        "callback_url": callback_url(config),
        "created_at": config.created_at,
        "updated_at": config.updated_at,
    }


def create_gateway(*, organization: Organization, provider: str, methods: list[str], credentials: dict,
                   options: dict) -> GatewayConfig:
    _lock(organization)
    if provider == "sandbox" and organization.mode != "test":
        raise SandboxNeedsTestMode("the sandbox serves only test-mode organizations", field="provider")
    credentials = {k: v for k, v in credentials.items()}
    if provider == "sandbox":
        credentials.setdefault("webhook_secret", random_token(40))
    _check(organization=organization, provider=provider, methods=methods, credentials=credentials,
           options=options)
    _check_free(organization=organization, methods=methods)
    now = clock.now()
    return GatewayConfig.objects.create(organization=organization, provider=provider, methods=list(methods),
                                        credentials=credentials, options=options, created_at=now, updated_at=now)


def update_gateway(*, organization: Organization, config: GatewayConfig, changes: dict) -> GatewayConfig:
    """`credentials` are merged (the keys sent replace the stored ones); `options` replace the stored ones."""
    _lock(organization)
    config = GatewayConfig.objects.select_for_update().get(pk=config.pk)
    if config.is_fallback:
        raise SandboxGatewayReadOnly("the built-in sandbox configuration cannot be changed: create a configuration "
                                     "for the method instead", field="id")
    methods = changes.get("methods", config.methods)
    credentials = {**config.credentials, **changes.get("credentials", {})}
    options = changes.get("options", config.options)
    active = changes.get("active", config.active)
    _check(organization=organization, provider=config.provider, methods=methods, credentials=credentials,
           options=options)
    if active:
        _check_free(organization=organization, methods=methods, excluding=config)
    config.methods, config.credentials, config.options, config.active = list(methods), credentials, options, active
    config.updated_at = clock.now()
    config.save(update_fields=["methods", "credentials", "options", "active", "updated_at"])
    return config


def delete_gateway(*, organization: Organization, config: GatewayConfig) -> None:
    """Hides and deactivates it; the row stays so its payments' late callbacks still verify."""
    if config.is_fallback:
        raise SandboxGatewayReadOnly("the built-in sandbox configuration cannot be deleted", field="id")
    now = clock.now()
    GatewayConfig.objects.filter(pk=config.pk).update(active=False, deleted_at=now, updated_at=now)


def _lock(organization: Organization) -> None:
    # Serializes configuration writes per organization, so "one active configuration per method" holds
    # under concurrent requests (the methods live in a JSON list, which no unique index covers).
    Organization.objects.select_for_update().filter(pk=organization.pk).first()


def _check_free(*, organization: Organization, methods: list[str], excluding: GatewayConfig | None = None):
    others = GatewayConfig.objects.filter(organization=organization, active=True, is_fallback=False,
                                          deleted_at__isnull=True)
    if excluding is not None:
        others = others.exclude(pk=excluding.pk)
    for other in others.order_by("id"):
        for method in methods:
            if method in other.methods:
                raise GatewayMethodTaken(f"{method} is already served by gateway {other.public_id} ({other.provider}); "
                                         "deactivate it or remove the method from it first", field="methods")


def _check(*, organization: Organization, provider: str, methods: list[str], credentials: dict, options: dict):
    if not methods:
        raise ValidationFailed("name at least one method: card, bank_slip or pix", field="methods")
    if len(set(methods)) != len(methods):
        raise ValidationFailed("methods must not repeat", field="methods")
    for method in methods:
        if method not in PROVIDER_METHODS[provider]:
            raise ValidationFailed(f"{provider} does not serve {method}", field="methods")
    for name, value in credentials.items():
        if name not in CREDENTIAL_FIELDS[provider]:
            raise ValidationFailed(f"{provider} takes no credential {name!r}; it takes "
                                   f"{', '.join(sorted(CREDENTIAL_FIELDS[provider]))}", field=f"credentials.{name}")
        if not isinstance(value, str) or not value.strip() or len(value) > 500:
            raise ValidationFailed("must be a non-empty string (at most 500 characters)", field=f"credentials.{name}")
    for name in options:
        if name not in OPTION_FIELDS[provider]:
            raise ValidationFailed(f"{provider} takes no option {name!r}", field=f"options.{name}")
    if provider == "pagarme":
        key = credentials.get("secret_key", "")
        if not key:
            raise ValidationFailed("the Pagar.me secret key is required", field="credentials.secret_key")
        if not key.startswith("sk_"):
            raise ValidationFailed("a Pagar.me secret key starts with sk_ (sk_test_ in test mode)",
                                   field="credentials.secret_key")
        if (organization.mode == "test") != key.startswith("sk_test_"):
            raise ValidationFailed(
                "a test-mode organization takes a test key (sk_test_...) and a live-mode one a live key",
                field="credentials.secret_key")
    if provider == "pagarme" and options.get("public_key"):
        public_key = options["public_key"]
        if not public_key.startswith("pk_") or (organization.mode == "test") != public_key.startswith("pk_test_"):
            raise ValidationFailed("a Pagar.me public key starts with pk_test_ (test mode) or pk_ (live mode)",
                                   field="options.public_key")
    if provider == "kobana":
        for name in ("api_token", "webhook_secret"):
            if not credentials.get(name):
                raise ValidationFailed(f"the Kobana {name} is required", field=f"credentials.{name}")
        if "pix" in methods and not (credentials.get("pix_account_uid") or options.get("pix_account_uid")):
            raise ValidationFailed("PIX through Kobana needs the pix_account_uid", field="credentials.pix_account_uid")

