"""One order in flight per domain: a run claims due domains with a lease; another worker (or run) finds
nothing to take until the lease of a dead worker has passed."""

from datetime import timedelta

import pytest

from cobrador.domains import issuing, services
from cobrador.domains.models import CustomDomain

pytestmark = pytest.mark.django_db


def test_a_claimed_domain_is_not_ordered_for_twice_and_a_dead_workers_claim_expires(api, dns_server, clock):
    body = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    CustomDomain.objects.filter(public_id=body["id"]).update(status="verified", next_ssl_attempt_at=clock.now())

    first_claim, first = issuing._claim(clock.now(), 10, set())
    second_claim, second = issuing._claim(clock.now(), 10, set())

    assert [d.public_id for d in first] == [body["id"]] and second == []
    domain = CustomDomain.objects.get(public_id=body["id"])
    assert domain.ssl_claim == first_claim != second_claim
    later = clock.now() + services.CLAIM_LEASE + timedelta(seconds=1)
    third_claim, third = issuing._claim(later, 10, set())  # the first worker died holding it
    assert [d.public_id for d in third] == [body["id"]]
    services.release_claim(domain_id=domain.pk, claim=first_claim)  # the dead worker's late release: no effect
    assert CustomDomain.objects.get(pk=domain.pk).ssl_claim == third_claim


def test_failed_validations_back_off_within_the_cas_per_hostname_limit(api, dns_server, clock):
    body = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    CustomDomain.objects.filter(public_id=body["id"]).update(status="verified", verified_at=clock.now(),
                                                             next_ssl_attempt_at=clock.now())
    attempts = []
    for _ in range(12):
        domain = CustomDomain.objects.select_related("organization").get(public_id=body["id"])
        clock.set(domain.next_ssl_attempt_at)
        attempts.append(clock.now())
        services.record_failure(domain=domain, failure=services.Failure("the CA could not validate",
                                                                        validation_failed=True), as_of=clock.now())
    for i, at in enumerate(attempts):  # never 5 failed validations of one hostname within an hour
        assert sum(1 for other in attempts[i:] if other - at < timedelta(hours=1)) < 5
    delays = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert delays[0] >= timedelta(minutes=5) and max(delays) <= timedelta(hours=1, minutes=12)
    domain.refresh_from_db()
    assert domain.status == "verified" and domain.ssl_failures == 12 and "could not validate" in domain.ssl_error


def test_recent_failed_validations_hold_the_next_order_past_the_hour_whatever_the_backoff(api, dns_server, clock):
    body = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    now = clock.now()
    earlier = [now - timedelta(minutes=m) for m in (50, 30, 20)]  # e.g. before a manual verify reset the count
    CustomDomain.objects.filter(public_id=body["id"]).update(
        status="verified", verified_at=now, failed_validations=[t.isoformat() for t in earlier])
    domain = CustomDomain.objects.select_related("organization").get(public_id=body["id"])

    services.record_failure(domain=domain, failure=services.Failure("invalid", validation_failed=True), as_of=now)

    domain.refresh_from_db()
    assert domain.ssl_failures == 1  # the backoff alone would wait 5-6 minutes
    assert domain.next_ssl_attempt_at == earlier[0] + timedelta(hours=1)  # the 5th try falls out of the hour
    assert len(domain.failed_validations) == 4
