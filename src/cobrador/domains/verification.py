"""The custom-domain-dns work: check every domain whose DNS check is due, in batches.

Each batch's names are resolved concurrently (dns.check_many) with no transaction open; then one
transaction locks the batch's rows, applies what was found (services.apply_findings: bulk updates,
change rows, events) and commits. A rerun or a second worker only checks a domain again.
"""

from collections import Counter
from dataclasses import fields
from datetime import datetime

from django.db import transaction

from cobrador.core import clock
from cobrador.domains import dns, publishing, services
from cobrador.domains.models import CustomDomain

BATCH_SIZE = 500
CHECKED_STATUSES = ("pending", "verified", "active")


def _apply(ids_findings: dict, as_of: datetime) -> tuple[list[CustomDomain], services.DnsOutcome]:
    """The rows locked and updated (organization joined), and what changed."""
    with transaction.atomic():
        domains = list(CustomDomain.objects.select_for_update().filter(pk__in=list(ids_findings))
                       .select_related("organization").order_by("pk"))
        outcome = services.apply_findings(domains=domains, findings=ids_findings, as_of=as_of)
    for hostname in outcome.unpublish:
        publishing.unpublish(hostname)
    return domains, outcome


def check_due(*, as_of: datetime, batch_size: int = BATCH_SIZE, concurrency: int = dns.CONCURRENCY) -> Counter:
    totals: Counter = Counter()
    last_pk = 0
    while True:
        batch = list(CustomDomain.objects.filter(next_dns_check_at__lte=as_of, status__in=CHECKED_STATUSES,
                                                 pk__gt=last_pk)
                     .order_by("pk").values_list("pk", "hostname", "verification_token")[:batch_size])
        if not batch:
            return totals
        last_pk = batch[-1][0]
        findings = dns.check_many([(hostname, token) for _, hostname, token in batch], concurrency=concurrency)
        totals["queries"] += sum(f.queries for f in findings)
        _, outcome = _apply({pk: finding for (pk, _, _), finding in zip(batch, findings, strict=True)}, as_of)
        totals.update({f.name: getattr(outcome, f.name) for f in fields(outcome) if f.name != "unpublish"})


def check_now(*, domain: CustomDomain) -> CustomDomain:
    """POST /verify: one domain, now (its DNS is resolved outside any transaction); the row as committed."""
    finding = dns.check_many([(domain.hostname, domain.verification_token)])[0]
    (checked,), _ = _apply({domain.pk: finding}, clock.now())
    return checked
