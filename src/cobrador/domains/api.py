from django.db import transaction
from ninja import Router, Status

from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.domains import publishing, services, verification
from cobrador.domains.errors import ERROR_RESPONSES, CustomDomainNotFound
from cobrador.domains.models import CustomDomain
from cobrador.domains.schemas import (
    CustomDomainCreate,
    CustomDomainDetailOut,
    CustomDomainPage,
    CustomDomainStatus,
)
from cobrador.domains.tasks import issue_certificates

router = Router(tags=["custom domains"])
register_path_id("custom_domain_id", CustomDomain)


def _domains(request):
    return CustomDomain.objects.filter(organization=request.auth).select_related("organization")


def _domain(request, custom_domain_id: str, *, lock: bool = False) -> CustomDomain:
    domains = _domains(request)
    if lock:
        domains = domains.select_for_update(of=("self",))
    domain = domains.filter(public_id=custom_domain_id).first()
    if domain is None:
        raise CustomDomainNotFound("no such custom domain", field="id")
    return domain


def _detail(domain: CustomDomain) -> dict:
    return {**services.custom_domain_data(domain),
            "history": [services.change_data(c) for c in domain.changes.order_by("pk")]}


@router.post("/custom_domains", response={201: CustomDomainDetailOut, **errors(*ERROR_RESPONSES["create"])},
             summary="Add a custom domain")
def add_custom_domain(request, payload: CustomDomainCreate):
    """Answers the DNS records to create (`records`): a TXT record proving ownership and a CNAME routing the
    name to cobrador (A/AAAA records for an apex name). The custom-domain-dns job then checks them; once
    right the domain is `verified`, a certificate is ordered, and it turns `active`. 409 hostname_taken
    when the name is a custom domain already (of any organization); 422 hostname_invalid names the problem."""
    with transaction.atomic():
        domain = services.add_custom_domain(organization=request.auth, hostname=payload.hostname)
    return Status(201, _detail(domain))


@router.get("/custom_domains", response=CustomDomainPage, summary="List custom domains")
def list_custom_domains(request, status: CustomDomainStatus | None = None, limit: Limit = 20,
                        cursor: str | None = None):
    """Newest first; removed domains are listed only when asked for with `status=removed`."""
    domains = _domains(request)
    domains = domains.filter(status=status) if status else domains.exclude(status="removed")
    return paginate(domains, cursor=cursor, limit=limit, serialize=services.custom_domain_data)


@router.get("/custom_domains/{custom_domain_id}",
            response={200: CustomDomainDetailOut, **errors(*ERROR_RESPONSES["get"])},
            summary="Retrieve a custom domain, with its history")
def get_custom_domain(request, custom_domain_id: str):
    return _detail(_domain(request, custom_domain_id))


@router.post("/custom_domains/{custom_domain_id}/verify",
             response={200: CustomDomainDetailOut, **errors(*ERROR_RESPONSES["verify"])},
             summary="Check a custom domain's DNS now")
def verify_custom_domain(request, custom_domain_id: str):
    """Resolves the records now and applies what it finds: a pending domain whose records are right becomes
    `verified` (and its certificate is ordered right after); a failed or inactive one waits for DNS again
    for another 72 hours. 409 custom_domain_removed for a removed domain."""
    with transaction.atomic():
        domain = services.reopen_for_verification(domain=_domain(request, custom_domain_id, lock=True))
    domain = verification.check_now(domain=domain)
    if domain.status == "verified":
        issue_certificates.enqueue()
    return _detail(domain)


@router.delete("/custom_domains/{custom_domain_id}", response={204: None, **errors(*ERROR_RESPONSES["delete"])},
               summary="Remove a custom domain")
def remove_custom_domain(request, custom_domain_id: str):
    """It stops serving at once, its certificate and key are erased, and the hostname is free again."""
    with transaction.atomic():
        domain = services.remove_custom_domain(domain=_domain(request, custom_domain_id, lock=True))
    publishing.unpublish(domain.hostname)
    return Status(204, None)
