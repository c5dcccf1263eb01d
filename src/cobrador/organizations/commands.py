"""`cobrador org create`, `cobrador key create|revoke`, `cobrador user create` and the first run's
provisioning of `cobrador up`.

Each command takes the parsed arguments, calls the organization services and prints what the operator
needs (a key is shown once). Invalid input is refused by the services (ValidationFailed, which the CLI
prints naming the option); what cannot be found is a CommandFailed.
"""

import secrets

from django.contrib.auth import get_user_model
from django.db import transaction

from cobrador.core.commandline import CommandFailed
from cobrador.organizations.models import ApiKey, Organization
from cobrador.organizations.services import add_member, create_api_key, create_organization, revoke_api_key


def bootstrap_first_run() -> list[str]:
    """On the very first run: a test-mode organization, an API key and an admin user, shown once."""
    lines = []
    with transaction.atomic():
        if not Organization.objects.exists():
            organization = create_organization(name="My company", mode="test")
            _, key = create_api_key(organization=organization, name="created by cobrador up")
            lines += [f"  organization  {organization.public_id} (test mode)",
                      f"  API key       {key}   <- shown only now; keep it"]
        User = get_user_model()
        if not User.objects.filter(is_superuser=True).exists():
            password = secrets.token_urlsafe(12)
            User.objects.create_superuser("admin", "admin@localhost", password)
            lines += ["  admin user    admin", f"  password      {password}   <- shown only now; keep it"]
    return lines


def org_create(args) -> int:
    with transaction.atomic():
        organization = create_organization(name=args.name, mode=args.mode, billing_email=args.billing_email)
        _, key = create_api_key(organization=organization, name="created by cobrador org create")
    print(f"organization {organization.public_id} ({organization.mode} mode)")
    print(f"API key      {key}   <- shown only now; keep it")
    return 0


def _organization(public_id: str) -> Organization:
    try:
        return Organization.objects.get(public_id=public_id)
    except Organization.DoesNotExist:
        raise CommandFailed(f"no organization {public_id!r}") from None


def key_create(args) -> int:
    key, plaintext = create_api_key(organization=_organization(args.org), name=args.name)
    print(f"key {key.public_id}: {plaintext}   <- shown only now; keep it")
    return 0


def key_revoke(args) -> int:
    try:
        key = revoke_api_key(key_id=args.key_id)
    except ApiKey.DoesNotExist:
        raise CommandFailed(f"no API key {args.key_id!r} (see the admin's API keys page for ids)") from None
    print(f"revoked {key.public_id} ({key})")
    return 0


def user_create(args) -> int:
    """A member of the organization, who signs in at /dashboard/ with the e-mail and the password shown."""
    organization = _organization(args.org)
    with transaction.atomic():
        membership, password = add_member(organization=organization, email=args.email)
    user = membership.user
    print(f"member {user.username} of {organization.public_id} ({organization.name}): signs in at /dashboard/")
    if password is not None:
        print(f"password     {password}   <- shown only now; keep it")
    else:
        print("an existing user: their password is unchanged")
    return 0
