from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

CustomDomainStatus = Literal["pending", "verified", "active", "failed", "inactive", "removed"]

STATUS_DESCRIPTION = (
    "pending: waiting for DNS (checked with backoff: 1, 2, 5, 10, 30 minutes, then hourly; `failed` after 72 h); "
    "verified: ownership (TXT), routing (CNAME or apex A/AAAA) and CAA are right, a certificate is being ordered; "
    "active: serving your hosted pages over HTTPS (DNS re-checked daily, the certificate renewed in the CA's "
    "renewal window, else when 30 days or a third of its lifetime remain); failed: DNS was not right in 72 h, "
    "or no certificate could be issued in 72 h (`POST /verify` starts again); inactive: its records were gone "
    "for 72 h after a warning (no longer served nor renewed; `POST /verify` starts again); removed: deleted.")


class CustomDomainCreate(Schema):
    model_config = ConfigDict(extra="forbid", strict=True)

    hostname: str = Field(min_length=1, max_length=300,
                          description="The hostname your customers open, e.g. pagar.padaria.com.br (internationalized "
                                      "names are accepted and stored in their IDNA form). One organization per "
                                      "hostname.")


class DnsRecord(Schema):
    type: Literal["TXT", "CNAME", "A", "AAAA"]
    name: str
    value: str
    purpose: str


class DnsProblem(Schema):
    code: str = Field(description="txt_missing, txt_mismatch, cname_missing, cname_mismatch, address_mismatch, "
                                  "caa_forbids or dns_unreachable.")
    message: str = Field(description="What is expected, and what the name resolves to now.")


class DnsState(Schema):
    checked_at: datetime | None
    next_check_at: datetime | None
    problems: list[DnsProblem]
    observed: dict = Field(description="What the names resolved to at the last check (txt, cname, a, aaaa, caa).")
    missing_since: datetime | None = Field(description="An active domain whose records are gone: since when.")


class CertificateOut(Schema):
    serial: str
    not_before: datetime
    not_after: datetime
    renew_at: datetime | None


class CustomDomainOut(Schema):
    id: str
    object: str = "custom_domain"
    hostname: str
    status: CustomDomainStatus = Field(description=STATUS_DESCRIPTION)
    reason: str | None = Field(description="The reason code of the last change (waiting_for_dns, dns_verified, "
                                           "certificate_issued, certificate_renewed, dns_timeout, dns_missing, "
                                           "dns_gone, certificate_failed, renewal_failing, removed, ...).")
    message: str | None = Field(description="What happened and what to do, for a person.")
    status_changed_at: datetime
    records: list[DnsRecord] = Field(description="The DNS records to create: the TXT and the CNAME (or, for an apex "
                                                 "name, the A/AAAA records).")
    dns: DnsState
    certificate: CertificateOut | None
    certificate_error: str | None = Field(description="The last ACME failure, while retrying.")
    verified_at: datetime | None
    activated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CustomDomainChangeOut(Schema):
    from_status: str
    to_status: str
    reason: str
    message: str
    at: datetime


class CustomDomainDetailOut(CustomDomainOut):
    history: list[CustomDomainChangeOut] = Field(description="Every status change, oldest first.")


class CustomDomainPage(Schema):
    data: list[CustomDomainOut]
    has_more: bool
    next_cursor: str | None = None
