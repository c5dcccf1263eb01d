"""Page links through the API and the organization's page branding. Services never commit."""

from urllib.parse import urlsplit

from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.customers.models import BillingAccount
from cobrador.invoicing.models import Invoice
from cobrador.pages import links
from cobrador.pages.models import PageBranding, PageLink
from cobrador.proposals.models import Proposal

KINDS = {"prop": ("proposal", Proposal), "in": ("invoice", Invoice), "ba": ("card", BillingAccount)}


def create_page_link(*, organization, object_id: str) -> tuple[PageLink, str]:
    kind, model = KINDS.get(object_id.split("_", 1)[0], (None, None))
    if kind is None or not model.objects.filter(organization=organization, public_id=object_id).exists():
        raise ValidationFailed(f"no proposal, invoice or billing account {object_id!r}", field="object")
    return links.create_link(organization=organization, kind=kind, object_id=object_id)


def branding_data(organization) -> dict:
    found = PageBranding.objects.filter(organization=organization).first()
    return {"object": "page_branding", "logo_url": (found.logo_url or None) if found else None,
            "color": found.color if found else PageBranding.DEFAULT_COLOR,
            "updated_at": found.updated_at if found else organization.created_at}


def update_branding(*, organization, changes: dict) -> dict:
    values = {}
    if "logo_url" in changes:
        url = changes["logo_url"] or ""
        if url and (urlsplit(url).scheme != "https" or not urlsplit(url).netloc):
            raise ValidationFailed("logo_url must be an https URL", field="logo_url")
        values["logo_url"] = url
    if changes.get("color") is not None:
        values["color"] = changes["color"].lower()
    PageBranding.objects.update_or_create(organization=organization, defaults={**values, "updated_at": clock.now()})
    return branding_data(organization)
