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
