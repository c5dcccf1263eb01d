"""Custom domain use cases: the hostname rule, the one state machine and what each DNS check or ACME
order outcome changes. Nothing here resolves names or calls the CA, and nothing commits: dns.py and
acme.py make the calls outside any transaction; verification.py, issuing.py and the API routes commit.

    pending --DNS right--> verified --certificate--> active --records gone 72 h--> inactive
    pending --72 h waiting for DNS--> failed;   failed | inactive --verify--> pending;   any --DELETE--> removed

Every change stamps `status_changed_at`, `reason` and `message` and writes a CustomDomainChange row.
"""

import ipaddress
import random
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import idna
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import insert_objects, update_rows
from cobrador.domains import dns
from cobrador.domains.errors import CustomDomainRemoved, HostnameInvalid, HostnameTaken
from cobrador.domains.models import CustomDomain, CustomDomainChange
from cobrador.events.services import EventDraft, record_events

DNS_TIMEOUT = timedelta(hours=72)  # pending this long: failed; records gone this long: inactive
DNS_BACKOFF = [timedelta(minutes=m) for m in (1, 2, 5, 10, 30)] + [timedelta(hours=1)]
RECHECK = timedelta(days=1)  # verified and active domains
MISSING_RECHECK = timedelta(hours=1)
SSL_BACKOFF_FIRST, SSL_BACKOFF_CAP = timedelta(minutes=5), timedelta(hours=1)
FAILED_VALIDATIONS_PER_HOUR = 5  # Let's Encrypt's limit per account and hostname
RENEWAL_FAILURES_TO_NOTIFY = 3
CLAIM_LEASE = timedelta(minutes=15)

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


# --- the hostname ------------------------------------------------------------------------------------


def normalize_hostname(value: str) -> str:
    """Lower-case A-label form of a hostname (IDNA 2008, UTS #46 mapping), or HostnameInvalid."""
    name = (value or "").strip().rstrip(".")
    if not name:
        raise HostnameInvalid("a hostname is required, e.g. pagar.example.com.br", field="hostname")
    if "*" in name:
        raise HostnameInvalid("wildcard names cannot be custom domains: give one hostname", field="hostname")
    if "/" in name or ":" in name or "@" in name or " " in name:
        raise HostnameInvalid("give a bare hostname (no scheme, port, path or user), e.g. pagar.example.com.br",
                              field="hostname")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        pass
    else:
        raise HostnameInvalid("an IP address cannot be a custom domain: give a hostname", field="hostname")
    try:
        name = idna.encode(name, uts46=True).decode("ascii")
    except idna.IDNAError as exc:
        raise HostnameInvalid(f"not a valid hostname: {exc}", field="hostname") from None
    labels = name.split(".")
    if len(name) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        raise HostnameInvalid("not a valid hostname: labels of letters, digits and hyphens, at least two of them",
                              field="hostname")
    if labels[-1].isdigit():
        raise HostnameInvalid("not a valid hostname: the last label cannot be numeric", field="hostname")
    own = {(urlsplit(settings.PUBLIC_URL).hostname or "").lower(), settings.CUSTOM_DOMAIN_TARGET.lower()}
    if name in own or name.endswith("." + settings.CUSTOM_DOMAIN_TARGET.lower()):
        raise HostnameInvalid("this is cobrador's own hostname, not a custom domain", field="hostname")
    return name


# --- the API object ----------------------------------------------------------------------------------


def certificate_data(domain: CustomDomain) -> dict | None:
    if not domain.certificate_serial:
        return None
    return {"serial": domain.certificate_serial, "not_before": domain.certificate_not_before,
            "not_after": domain.certificate_not_after, "renew_at": domain.renew_at}


def custom_domain_data(domain: CustomDomain) -> dict:
    observed = dict(domain.dns_observed or {})
    problems = observed.pop("problems", [])
    return {
        "id": domain.public_id,
        "object": "custom_domain",
        "hostname": domain.hostname,
        "status": domain.status,
        "reason": domain.reason or None,
        "message": domain.message or None,
        "status_changed_at": domain.status_changed_at,
        "records": dns.expected_records(domain.hostname, domain.verification_token),
        "dns": {"checked_at": domain.last_dns_check_at, "next_check_at": domain.next_dns_check_at,
                "problems": [{"code": c, "message": m} for c, m in problems], "observed": observed,
                "missing_since": domain.dns_missing_since},
        "certificate": certificate_data(domain),
        "certificate_error": domain.ssl_error or None,
        "verified_at": domain.verified_at,
        "activated_at": domain.activated_at,
        "created_at": domain.created_at,
        "updated_at": domain.updated_at,
    }


def change_data(change: CustomDomainChange) -> dict:
    return {"from_status": change.from_status, "to_status": change.to_status, "reason": change.reason,
            "message": change.message, "at": change.at}


def page_base_urls(organization_ids) -> dict[int, str]:
    """https://<host> of each organization's active custom domain (its first, if several): where its hosted
    page links point. Organizations without one are absent (their links use COBRADOR_PUBLIC_URL)."""
    bases: dict[int, str] = {}
    for organization_id, hostname in (CustomDomain.objects.filter(organization_id__in=list(organization_ids),
                                                                  status="active")
                                      .order_by("-pk").values_list("organization_id", "hostname")):
        bases[organization_id] = f"https://{hostname}"
    return bases


# --- adding and removing -----------------------------------------------------------------------------


def add_custom_domain(*, organization, hostname: str) -> CustomDomain:
    name = normalize_hostname(hostname)
    existing = CustomDomain.objects.exclude(status="removed").filter(hostname=name).first()
    if existing is not None:
        whose = "this organization" if existing.organization_id == organization.pk else "another organization"
        raise HostnameTaken(f"{name} is already a custom domain of {whose}", field="hostname")
    now = clock.now()
    domain = CustomDomain(organization=organization, hostname=name, status="pending", reason="waiting_for_dns",
                          message=_waiting_message(name, None), status_changed_at=now, pending_since=now,
                          next_dns_check_at=now, created_at=now, updated_at=now)
    try:
        with transaction.atomic():  # a savepoint: a concurrent add of the same name loses here
            domain.save(force_insert=True)
    except IntegrityError:
        raise HostnameTaken(f"{name} is already a custom domain", field="hostname") from None
    CustomDomainChange.objects.create(domain=domain, from_status="", to_status="pending", reason="added",
                                      message=domain.message, at=now)
    return domain


def remove_custom_domain(*, domain: CustomDomain) -> CustomDomain:
    """The domain stops serving at once; its certificate and key are erased. Its history stays."""
    if domain.status == "removed":
        return domain
    _move(domain, "removed", "removed", "Removed by the organization; its certificate and key were erased.",
          clock.now())
    domain.certificate_pem = domain.private_key_pem = ""
    domain.next_dns_check_at = domain.next_ssl_attempt_at = None
    domain.save()
    return domain


def reopen_for_verification(*, domain: CustomDomain) -> CustomDomain:
    """POST /verify on a failed or inactive domain: it waits for DNS again, for another 72 h."""
    if domain.status == "removed":
        raise CustomDomainRemoved("this custom domain was removed; add it again", field="id")
    if domain.status in ("failed", "inactive"):
        now = clock.now()
        _move(domain, "pending", "waiting_for_dns", _waiting_message(domain.hostname, None), now)
        domain.pending_since = now
        domain.dns_checks = 0
        domain.dns_missing_since = None
        domain.save()
    return domain


# --- state changes -----------------------------------------------------------------------------------


def _move(domain: CustomDomain, status: str, reason: str, message: str, at: datetime, *,
          changes: list | None = None) -> None:
    change = CustomDomainChange(domain=domain, from_status=domain.status, to_status=status, reason=reason,
                                message=message, at=at)
    if changes is None:
        change.save()
    else:
        changes.append(change)
    domain.status, domain.reason, domain.message = status, reason, message
    domain.status_changed_at = domain.updated_at = at


def _waiting_message(hostname: str, finding) -> str:
    if finding is None:
        return (f"Waiting for DNS: create the records listed in `records` for {hostname}; cobrador checks them "
                "every few minutes, for up to 72 hours.")
    return "Waiting for DNS. " + finding.message


def _event(domain: CustomDomain, type_: str, **extra) -> EventDraft:
    return EventDraft(domain.organization, type_, {**custom_domain_data(domain), **extra})


DNS_FIELDS = ["status", "reason", "message", "status_changed_at", "pending_since", "dns_checks",
              "next_dns_check_at", "last_dns_check_at", "dns_observed", "dns_missing_since", "verified_at",
              "next_ssl_attempt_at", "updated_at"]


@dataclass
class DnsOutcome:
    verified: int = 0
    waiting: int = 0
    failed: int = 0
    unreachable: int = 0
    confirmed: int = 0
    missing: int = 0
    inactive: int = 0
    unpublish: list[str] = field(default_factory=list)  # hostnames whose certificate files go


def apply_findings(*, domains: list[CustomDomain], findings: dict, as_of: datetime) -> DnsOutcome:
    """What the DNS checks found, for rows locked by the caller, in one batch: bulk updates, change rows and
    events. `findings` maps a domain's pk to its dns.Finding."""
    outcome, changes, events, touched = DnsOutcome(), [], [], []
    for domain in domains:
        finding = findings.get(domain.pk)
        if finding is None or domain.status not in ("pending", "verified", "active"):
            continue
        touched.append(domain)
        domain.last_dns_check_at = domain.updated_at = as_of
        if not finding.transient:
            domain.dns_observed = {**finding.observed, "problems": finding.problems}
        if domain.status == "pending":
            _apply_pending(domain, finding, as_of, outcome, changes, events)
        else:
            _apply_recheck(domain, finding, as_of, outcome, changes, events)
    update_rows(touched, DNS_FIELDS)
    insert_objects(changes)
    record_events(events)
    return outcome


def _apply_pending(domain, finding, as_of, outcome, changes, events) -> None:
    if finding.ok:
        _move(domain, "verified", "dns_verified",
              f"Ownership and routing of {domain.hostname} are verified; a certificate is being ordered.",
              as_of, changes=changes)
        domain.verified_at = as_of
        domain.dns_checks = 0
        domain.next_dns_check_at = as_of + RECHECK
        domain.next_ssl_attempt_at = as_of
        events.append(_event(domain, "custom_domain.verified"))
        outcome.verified += 1
        return
    if as_of - domain.pending_since >= DNS_TIMEOUT:
        detail = finding.message if not finding.transient else "no DNS server answered for it."
        _move(domain, "failed", "dns_timeout",
              f"The DNS records of {domain.hostname} were still not right after 72 hours: {detail} Fix them, "
              f"then ask for a new check with POST /v1/custom_domains/{domain.public_id}/verify.",
              as_of, changes=changes)
        domain.next_dns_check_at = None
        events.append(_event(domain, "custom_domain.failed"))
        outcome.failed += 1
        return
    if finding.transient:
        outcome.unreachable += 1
    else:
        outcome.waiting += 1
        domain.reason, domain.message = "waiting_for_dns", _waiting_message(domain.hostname, finding)
    domain.next_dns_check_at = as_of + DNS_BACKOFF[min(domain.dns_checks, len(DNS_BACKOFF) - 1)]
    domain.dns_checks += 1


def _apply_recheck(domain, finding, as_of, outcome, changes, events) -> None:
    if finding.transient:
        domain.next_dns_check_at = as_of + MISSING_RECHECK
        outcome.unreachable += 1
        return
    if finding.ok:
        if domain.dns_missing_since is not None:
            domain.dns_missing_since = None
            domain.reason, domain.message = "dns_restored", f"The DNS records of {domain.hostname} are back."
            if domain.status == "active" and (domain.next_ssl_attempt_at is None
                                              or (domain.renew_at and domain.renew_at < as_of)):
                domain.next_ssl_attempt_at = as_of
        domain.next_dns_check_at = as_of + RECHECK
        outcome.confirmed += 1
        return
    if domain.dns_missing_since is None:
        domain.dns_missing_since = as_of
        deadline = as_of + DNS_TIMEOUT
        domain.reason = "dns_missing"
        domain.message = (f"The DNS records of {domain.hostname} are gone or changed: {finding.message} "
                          f"Its certificate is not renewed meanwhile, and unless they are back by "
                          f"{deadline:%Y-%m-%d %H:%M} UTC the domain becomes inactive.")
        domain.next_dns_check_at = as_of + MISSING_RECHECK
        events.append(_event(domain, "custom_domain.dns_missing"))
        outcome.missing += 1
        return
    if as_of - domain.dns_missing_since >= DNS_TIMEOUT:
        _move(domain, "inactive", "dns_gone",
              f"The DNS records of {domain.hostname} have been gone since {domain.dns_missing_since:%Y-%m-%d %H:%M}"
              f" UTC: {finding.message} It no longer serves your pages and its certificate is not renewed. "
              f"Restore the records, then POST /v1/custom_domains/{domain.public_id}/verify.",
              as_of, changes=changes)
        domain.next_dns_check_at = domain.next_ssl_attempt_at = None
        events.append(_event(domain, "custom_domain.inactive"))
        outcome.unpublish.append(domain.hostname)
        outcome.inactive += 1
        return
    domain.next_dns_check_at = as_of + MISSING_RECHECK
    outcome.missing += 1


# --- certificates ------------------------------------------------------------------------------------


def fallback_renew_at(not_before: datetime, not_after: datetime) -> datetime:
    """Without ARI: when 30 days or a third of the lifetime remain, whichever comes first, but never before
    a third of the lifetime has passed (a short-lived certificate is not renewed at once)."""
    lifetime = not_after - not_before
    return max(min(not_after - timedelta(days=30), not_after - lifetime / 3), not_before + lifetime / 3)


def ari_renew_at(window_start: datetime, window_end: datetime) -> datetime:
    """A random time in the CA's suggested window (RFC 9773 section 4.2), to spread the CA's load."""
    return window_start + (window_end - window_start) * random.random()


def claimable(as_of: datetime):
    """Domains the ssl job orders or renews for at `as_of`: verified ones (first certificate) and active ones
    whose DNS is in place, when due, with no order in flight. Never a pending, failed or inactive one."""
    return (CustomDomain.objects.filter(next_ssl_attempt_at__lte=as_of)
            .filter(Q(status="verified") | Q(status="active", dns_missing_since=None))
            .filter(Q(ssl_claimed_until=None) | Q(ssl_claimed_until__lt=as_of)))


@dataclass
class Issued:
    fullchain_pem: str
    key_pem: str
    serial: str
    not_before: datetime
    not_after: datetime


@dataclass
class Failure:
    message: str
    retry_after: datetime | None = None
    validation_failed: bool = False


def record_issued(*, domain: CustomDomain, issued: Issued, renew_at: datetime, next_look: datetime,
                  as_of: datetime) -> str:
    """The new certificate replaces the old one (the caller publishes its files after commit)."""
    renewal = domain.status == "active"
    domain.certificate_pem, domain.private_key_pem = issued.fullchain_pem, issued.key_pem
    domain.certificate_serial = issued.serial
    domain.certificate_not_before, domain.certificate_not_after = issued.not_before, issued.not_after
    domain.renew_at, domain.next_ssl_attempt_at = renew_at, next_look
    domain.ssl_failures, domain.ssl_error, domain.renewal_failure_notified_at = 0, "", None
    domain.ssl_claimed_until, domain.ssl_claim = None, ""
    if renewal:
        domain.reason = "certificate_renewed"
        domain.message = f"A new certificate for {domain.hostname} is in place until {issued.not_after:%Y-%m-%d}."
        domain.updated_at = as_of
        event = "custom_domain.certificate_renewed"
    else:
        _move(domain, "active", "certificate_issued",
              f"{domain.hostname} serves your hosted pages over HTTPS (certificate valid until "
              f"{issued.not_after:%Y-%m-%d}).", as_of)
        domain.activated_at = as_of
        event = "custom_domain.active"
    domain.save()
    record_events([_event(domain, event)])
    return event


def record_ari(*, domain: CustomDomain, renew_at: datetime, next_look: datetime) -> None:
    """A renewal-information answer that does not call for renewal yet: when to renew, when to ask again."""
    domain.renew_at, domain.next_ssl_attempt_at = renew_at, next_look
    domain.ssl_claimed_until, domain.ssl_claim = None, ""
    domain.save(update_fields=["renew_at", "next_ssl_attempt_at", "ssl_claimed_until", "ssl_claim"])


def record_failure(*, domain: CustomDomain, failure: Failure, as_of: datetime) -> str:
    """A failed order: back off (exponentially, capped at an hour, at least the CA's Retry-After and inside
    the per-hostname failed-validation limit). The certificate in place, if any, keeps serving."""
    domain.ssl_failures += 1
    domain.ssl_error = failure.message[:2000]
    delay = min(SSL_BACKOFF_FIRST * 2 ** (domain.ssl_failures - 1), SSL_BACKOFF_CAP)
    next_attempt = as_of + delay * random.uniform(1.0, 1.2)
    if failure.retry_after is not None:
        next_attempt = max(next_attempt, failure.retry_after)
    recent = [t for t in (domain.failed_validations or [])
              if datetime.fromisoformat(t) > as_of - timedelta(hours=1)]
    if failure.validation_failed:
        recent.append(as_of.isoformat())
    if len(recent) >= FAILED_VALIDATIONS_PER_HOUR - 1:
        next_attempt = max(next_attempt, datetime.fromisoformat(recent[0]) + timedelta(hours=1))
    domain.failed_validations = recent
    domain.next_ssl_attempt_at = next_attempt
    domain.ssl_claimed_until, domain.ssl_claim = None, ""
    domain.updated_at = as_of
    result = "retry"
    events = []
    if domain.status == "active":
        if domain.ssl_failures >= RENEWAL_FAILURES_TO_NOTIFY and domain.renewal_failure_notified_at is None:
            domain.renewal_failure_notified_at = as_of
            domain.reason = "renewal_failing"
            domain.message = (f"The certificate of {domain.hostname} could not be renewed: {failure.message} The "
                              f"current one keeps serving until {domain.certificate_not_after:%Y-%m-%d}; cobrador "
                              f"keeps trying.")
            events.append(_event(domain, "custom_domain.certificate_renewal_failed"))
            result = "renewal_failed_notified"
    elif domain.verified_at and as_of - domain.verified_at >= DNS_TIMEOUT:
        _move(domain, "failed", "certificate_failed",
              f"No certificate could be issued for {domain.hostname} in 72 hours: {failure.message} Check that "
              f"{domain.hostname} reaches cobrador on port 80, then POST /v1/custom_domains/{domain.public_id}"
              f"/verify.", as_of)
        domain.next_ssl_attempt_at = domain.next_dns_check_at = None
        events.append(_event(domain, "custom_domain.failed"))
        result = "failed"
    domain.save()
    record_events(events)
    return result


def release_claim(*, domain_id: int, claim: str) -> None:
    CustomDomain.objects.filter(pk=domain_id, ssl_claim=claim).update(ssl_claimed_until=None, ssl_claim="")
