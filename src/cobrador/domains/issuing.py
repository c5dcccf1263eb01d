"""The custom-domain-ssl work: order certificates for verified domains, renew active ones, publish them.

The three steps of payments/charging.py: claim (a short transaction marks the due rows with this run's
claim token and a lease, so one order at most is in flight per domain, whatever the number of workers),
call the CA outside any transaction (several orders at once, COBRADOR_ACME_CONCURRENCY threads), then
record each outcome in its own short transaction, only while the claim is still ours. The certificate
files are written after that commit; a crash in between is repaired by the next run (`publish_missing`).
"""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connections, transaction

from cobrador.core.ids import random_token
from cobrador.domains import acme, publishing, services
from cobrador.domains.models import AcmeChallenge, CustomDomain


def publish_missing() -> int:
    """Write the files of every active certificate whose published copy is missing or older."""
    written = 0
    for domain in CustomDomain.objects.filter(status="active").exclude(certificate_serial="").iterator():
        if publishing.published_serial(domain.hostname) != domain.certificate_serial:
            publishing.publish(domain.hostname, domain.certificate_pem, domain.private_key_pem)
            written += 1
    return written


def _claim(as_of: datetime, limit: int, done: set[int]) -> tuple[str, list[CustomDomain]]:
    claim = random_token(24)
    with transaction.atomic():
        ids = list(services.claimable(as_of).exclude(pk__in=done).order_by("next_ssl_attempt_at", "pk")
                   .values_list("pk", flat=True)[:limit])
        if ids:
            services.claimable(as_of).filter(pk__in=ids).update(
                ssl_claimed_until=as_of + services.CLAIM_LEASE, ssl_claim=claim)
    return claim, list(CustomDomain.objects.filter(ssl_claim=claim).order_by("pk"))


# A domain is looked at again an hour later at the soonest, whatever its certificate's dates say (a clock
# ahead of the CA's would otherwise order again and again).
MIN_LOOK = timedelta(hours=1)


class _Clients(threading.local):
    client = None


def _renewal_plan(acme_client, fullchain_pem: str, not_before, not_after, as_of):
    """(renew_at, next time to look): the CA's window when it offers renewal information, else the rule."""
    try:
        window = acme.renewal_window(acme_client, fullchain_pem)
    except Exception:  # noqa: BLE001 - ARI is advice: without it the fallback rule stands
        window = None
    if window is None:
        renew_at = services.fallback_renew_at(not_before, not_after)
        return renew_at, max(renew_at, as_of + MIN_LOOK)
    start, end, ask_again = window
    renew_at = services.ari_renew_at(start, end)
    return renew_at, max(min(renew_at, ask_again), as_of + MIN_LOOK)


def _locked_if_claimed(domain_id: int, claim: str) -> CustomDomain | None:
    """The domain's row, locked, while this run's claim is still on it (else None)."""
    return (CustomDomain.objects.select_for_update().select_related("organization")
            .filter(pk=domain_id, ssl_claim=claim).first())


def _attempt(domain: CustomDomain, claim: str, as_of: datetime, clients: _Clients) -> str:
    net = None
    try:
        if clients.client is None:
            clients.client = acme.new_client()
        acme_client = clients.client
        net = acme_client.net
        if domain.status == "active" and domain.certificate_pem:
            renew_at, next_look = _renewal_plan(acme_client, domain.certificate_pem, domain.certificate_not_before,
                                                domain.certificate_not_after, as_of)
            if renew_at > as_of:  # the CA moved the window, or only its advice was due
                services.record_ari(domain=domain, renew_at=renew_at, next_look=next_look)
                return "not_due"
        issued = acme.order_certificate(acme_client, domain.hostname)
        renew_at, next_look = _renewal_plan(acme_client, issued.fullchain_pem, issued.not_before,
                                            issued.not_after, as_of)
    except Exception as exc:  # noqa: BLE001 - every failure of an order is recorded on its domain
        failure = acme.failure_from(exc, net)
        clients.client = None  # the next order starts from a fresh directory and nonce
        with transaction.atomic():
            locked = _locked_if_claimed(domain.pk, claim)
            if locked is None:
                return "claim_lost"
            return services.record_failure(domain=locked, failure=failure, as_of=as_of)
    with transaction.atomic():
        locked = _locked_if_claimed(domain.pk, claim)
        if locked is None or locked.status not in ("verified", "active"):
            return "claim_lost"
        event = services.record_issued(domain=locked, issued=issued, renew_at=renew_at, next_look=next_look,
                                       as_of=as_of)
    publishing.publish(domain.hostname, issued.fullchain_pem, issued.key_pem)
    return "issued" if event == "custom_domain.active" else "renewed"


def _in_thread(domain, claim, as_of, clients) -> str:
    try:
        return _attempt(domain, claim, as_of, clients)
    finally:
        connections.close_all()  # this thread's connection, not the caller's


def issue_due(*, as_of: datetime, concurrency: int | None = None) -> Counter:
    concurrency = concurrency or settings.ACME_CONCURRENCY
    totals: Counter = Counter()
    totals["published"] += publish_missing()
    # HTTP-01 answers of an order whose worker died mid-way (a finished order deletes its own).
    AcmeChallenge.objects.filter(created_at__lt=as_of - timedelta(days=1)).delete()
    clients = _Clients()
    done: set[int] = set()  # each domain once per run
    while True:
        claim, domains = _claim(as_of, concurrency * 4, done)
        if not domains:
            return totals
        done.update(domain.pk for domain in domains)
        if concurrency == 1 or len(domains) == 1:
            outcomes = [_attempt(domain, claim, as_of, clients) for domain in domains]
        else:
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                outcomes = list(pool.map(_in_thread, domains, [claim] * len(domains), [as_of] * len(domains),
                                         [clients] * len(domains)))
        totals.update(outcomes)
