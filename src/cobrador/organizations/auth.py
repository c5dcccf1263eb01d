"""API-key authentication: `Authorization: Bearer sk_test_...` or `sk_live_...`.

Keys carry 190 random bits and are stored only as SHA-256 hashes (a slow hash adds nothing for
keys with that much entropy). The organization found by the key scopes every lookup of the request.
"""

from ninja.security import HttpBearer

from cobrador.core import logs
from cobrador.core.crypto import sha256_hex
from cobrador.core.errors import Unauthorized
from cobrador.organizations.models import ApiKey


def organization_for_key(token: str):
    if not token or not (token.startswith("sk_test_") or token.startswith("sk_live_")):
        return None
    key = (
        ApiKey.objects.select_related("organization")
        .filter(key_hash=sha256_hex(token), revoked_at__isnull=True)
        .first()
    )
    if key is None or not token.startswith(f"sk_{key.organization.mode}_"):
        return None
    return key.organization


class ApiKeyAuth(HttpBearer):
    openapi_description = "An organization's secret API key: `Authorization: Bearer sk_test_...`"

    def authenticate(self, request, token):
        organization = organization_for_key(token)
        if organization is None:
            raise Unauthorized("invalid, revoked or missing API key")
        request.organization = organization
        logs.bind(organization=organization.public_id)
        return organization
