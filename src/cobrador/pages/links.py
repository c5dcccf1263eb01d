"""Page links: unguessable (192 random bits), revocable tokens that open one hosted page.

The token is shown once (in the e-mail, or by POST /v1/page_links) and only its SHA-256 is stored.
`resolve` answers None for a wrong, revoked or mistyped token alike, and the views turn every None
into the same 404, so a guess learns nothing.
"""

import hashlib
import secrets

from django.conf import settings

from cobrador.core import clock
from cobrador.core.bulk import insert_rows
from cobrador.core.ids import new_public_id
from cobrador.domains.services import page_base_urls
from cobrador.pages.models import PageLink

TOKEN_BYTES = 24
PATHS = {"proposal": "p", "invoice": "i", "card": "c"}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def page_url(kind: str, token: str, base: str | None = None) -> str:
    """On the organization's active custom domain when it has one (`base`), else on cobrador's own host."""
    return f"{base or settings.PUBLIC_URL}/pages/{PATHS[kind]}/{token}/"


def mint_links(kind: str, refs: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """A new link for each (organization id, object public id), written in one insert in the caller's
    transaction; returns their URLs."""
    now = clock.now()
    tokens = {ref: secrets.token_urlsafe(TOKEN_BYTES) for ref in refs}
    insert_rows(PageLink, ["public_id", "organization", "kind", "object_id", "token_hash", "created_at"],
                [(new_public_id("pl"), org_id, kind, object_id, token_hash(token), now)
                 for (org_id, object_id), token in tokens.items()])
    bases = page_base_urls({org_id for org_id, _ in refs})
    return {ref: page_url(kind, token, bases.get(ref[0])) for ref, token in tokens.items()}


def builder(kind: str):
    """The link builder notifications calls while it drafts e-mails."""
    return lambda refs: mint_links(kind, refs)


def create_link(*, organization, kind: str, object_id: str) -> tuple[PageLink, str]:
    token = secrets.token_urlsafe(TOKEN_BYTES)
    link = PageLink.objects.create(public_id=new_public_id("pl"), organization=organization, kind=kind,
                                   object_id=object_id, token_hash=token_hash(token), created_at=clock.now())
    return link, page_url(kind, token, page_base_urls({organization.pk}).get(organization.pk))


def resolve(kind: str, token: str) -> PageLink | None:
    """The live link of `kind` with this token (only its organization and object loaded), or None."""
    if not token or len(token) > 100:
        return None
    return PageLink.objects.filter(token_hash=token_hash(token), kind=kind, revoked_at=None).only(
        "organization_id", "object_id").first()


def revoke_link(link: PageLink) -> PageLink:
    if link.revoked_at is None:
        link.revoked_at = clock.now()
        link.save(update_fields=["revoked_at"])
    return link


def link_data(link: PageLink, url: str | None = None) -> dict:
    return {"id": link.public_id, "object": "page_link", "kind": link.kind, "object_id": link.object_id,
            "url": url, "created_at": link.created_at, "revoked_at": link.revoked_at}


def resolve_for(request, kind: str, token: str) -> PageLink | None:
    """`resolve` for a page request: on an organization's custom domain (domains/middleware.py sets
    `custom_domain_organization_id`) only that organization's links open; any other is the same 404."""
    link = resolve(kind, token)
    return link if link is not None and opens_here(request, link.organization_id) else None


def opens_here(request, organization_id: int) -> bool:
    """Whether a page of `organization_id` may open for `request`: anywhere on cobrador's own host, and on a
    custom domain only for the organization it belongs to."""
    return getattr(request, "custom_domain_organization_id", None) in (None, organization_id)
