from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core.operations import register_path_id
from cobrador.pages import links, services
from cobrador.pages.models import PageLink
from cobrador.pages.schemas import PageBrandingOut, PageBrandingUpdate, PageLinkCreate, PageLinkOut

router = Router(tags=["pages"])
register_path_id("link_id", PageLink)


@router.post("/page_links", response={201: PageLinkOut}, summary="Create a hosted page link")
def create_page_link(request, payload: PageLinkCreate):
    """A new unguessable link to the hosted page of a proposal, an invoice, or a billing account's card
    update page. The URL is in this answer only (cobrador keeps its hash). E-mails about proposals,
    invoices and cards carry links of their own."""
    with transaction.atomic():
        link, url = services.create_page_link(organization=request.auth, object_id=payload.object)
    return Status(201, links.link_data(link, url))


@router.post("/page_links/{link_id}/revoke", response=PageLinkOut,
             summary="Revoke a hosted page link")
def revoke_page_link(request, link_id: str):
    """From now on the link answers 404, like a link that never existed."""
    with transaction.atomic():
        link = links.revoke_link(get_object_or_404(PageLink.objects.select_for_update()
                                                   .filter(organization=request.auth), public_id=link_id))
    return links.link_data(link)


@router.get("/organizations/settings/pages", response=PageBrandingOut, summary="Hosted page branding")
def get_page_branding(request):
    return services.branding_data(request.auth)


@router.patch("/organizations/settings/pages", response=PageBrandingOut,
              summary="Change hosted page branding")
def update_page_branding(request, payload: PageBrandingUpdate):
    """The logo (an https URL) and colour the hosted pages show beside the organization's name."""
    with transaction.atomic():
        return services.update_branding(organization=request.auth, changes=payload.model_dump(exclude_unset=True))
