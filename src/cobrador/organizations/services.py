"""Organizations, their API keys and their dunning policy. Services never commit: callers do."""

import secrets

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from cobrador.core import clock
from cobrador.core.crypto import sha256_hex
from cobrador.core.errors import ValidationFailed
from cobrador.core.ids import random_token
from cobrador.events.services import record_event
from cobrador.organizations.models import ApiKey, DunningConfig, Membership, Organization


def attach_organizations(objs: list) -> None:
    """Give each of `objs` (rows with an `organization_id`) its Organization, loaded once per batch:
    a batch has few organizations, and a join would build one instance per row."""
    organizations = Organization.objects.in_bulk({obj.organization_id for obj in objs})
    for obj in objs:
        obj.organization = organizations[obj.organization_id]


NAME_MAX_LENGTH = Organization._meta.get_field("name").max_length


def create_organization(*, name: str, mode: str = "test", billing_email: str = "",
                        timezone: str = "America/Sao_Paulo") -> Organization:
    """A new organization with the default dunning policy. `name` is stripped; raises ValidationFailed
    naming the field for an empty or too long name, an unknown mode or a malformed billing e-mail."""
    name = name.strip()
    if not name:
        raise ValidationFailed("name: must not be empty", field="name")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationFailed(f"name: must be at most {NAME_MAX_LENGTH} characters", field="name")
    if mode not in ("test", "live"):
        raise ValidationFailed(f"mode: must be test or live, not {mode!r}", field="mode")
    if billing_email:
        try:
            validate_email(billing_email)
        except ValidationError:
            raise ValidationFailed(f"billing_email: {billing_email!r} is not an e-mail address",
                                   field="billing_email") from None
    now = clock.now()
    organization = Organization.objects.create(
        name=name, mode=mode, billing_email=billing_email, timezone=timezone, created_at=now)
    DunningConfig.objects.create(organization=organization, updated_at=now, **DunningConfig.DEFAULTS)
    return organization


def create_api_key(*, organization: Organization, name: str = "") -> tuple[ApiKey, str]:
    """Returns the key row and the plaintext key, which is never stored and cannot be shown again."""
    plaintext = f"sk_{organization.mode}_{random_token(32)}"
    key = ApiKey.objects.create(organization=organization, name=name, key_hash=sha256_hex(plaintext),
                                last4=plaintext[-4:], created_at=clock.now())
    return key, plaintext


def revoke_api_key(*, organization: Organization | None = None, key_id: str) -> ApiKey:
    keys = ApiKey.objects.filter(public_id=key_id)
    if organization is not None:
        keys = keys.filter(organization=organization)
    key = keys.get()
    if key.revoked_at is None:
        key.revoked_at = clock.now()
        key.save(update_fields=["revoked_at"])
    return key


def dunning_config_data(config: DunningConfig) -> dict:
    return {
        "id": config.public_id,
        "object": "dunning_config",
        "max_retries": config.max_retries,
        "retry_interval_days": list(config.retry_interval_days),
        "suspend_after_retries": config.suspend_after_retries,
        "grace_period_days": config.grace_period_days,
        "auto_retry_enabled": config.auto_retry_enabled,
        "retry_payment_methods": list(config.retry_payment_methods),
        "updated_at": config.updated_at,
    }


def update_dunning_config(*, organization: Organization, changes: dict) -> DunningConfig:
    """Apply already-validated `changes`; emits dunning_config.updated when something changed."""
    config = DunningConfig.objects.select_for_update().get(organization=organization)
    changed = [field for field, value in changes.items() if getattr(config, field) != value]
    for field in changed:
        setattr(config, field, changes[field])
    if changed:
        config.updated_at = clock.now()
        config.save(update_fields=[*changed, "updated_at"])
        data = dunning_config_data(config)
        record_event(organization=organization, type="dunning_config.updated",
                     data={**data, "changed_fields": changed})
    return config


def add_member(*, organization: Organization, email: str, password: str | None = None) -> tuple[Membership, str | None]:
    """Give the person with this e-mail (a Django user named by it, created when new) access to the
    organization's dashboard. Returns the membership and the password of a new user (generated unless
    given: shown once), or None for an existing user, whose password stays. Raises ValidationFailed for a
    malformed e-mail or when they are a member already."""
    email = (email or "").strip().lower()
    try:
        validate_email(email)
    except ValidationError:
        raise ValidationFailed(f"email: {email!r} is not an e-mail address", field="email") from None
    User = get_user_model()
    user = User.objects.filter(username=email).first()
    new_password = None
    if user is None:
        new_password = password or secrets.token_urlsafe(12)
        user = User.objects.create_user(username=email, email=email, password=new_password)
    elif Membership.objects.filter(user=user, organization=organization).exists():
        raise ValidationFailed(f"email: {email} is a member of {organization.public_id} already", field="email")
    membership = Membership.objects.create(organization=organization, user=user, created_at=clock.now())
    return membership, new_password
