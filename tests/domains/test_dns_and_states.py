"""custom-domain-dns against the tests' DNS server: pending -> verified, the messages for each wrong record,
backoff, the 72 h failure, and the daily re-check that warns, then deactivates."""

from datetime import timedelta

import pytest

from cobrador.domains.models import CustomDomain, CustomDomainChange
from cobrador.events.models import Event
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from tests.domains.conftest import TARGET, create_records

pytestmark = pytest.mark.django_db


def _add(api, hostname="pagar.padaria.test") -> dict:
    response = api.post("/v1/custom_domains", {"hostname": hostname})
    assert response.status_code == 201, response.content
    return response.json()


def _sweep(clock):
    return run_job("custom-domain-dns", as_of=clock.now(), trigger="manual")


def _domain(body) -> CustomDomain:
    return CustomDomain.objects.get(public_id=body["id"])


def test_a_domain_with_its_records_goes_from_pending_to_verified(api, dns_server, clock):
    body = _add(api)
    assert body["status"] == "pending" and body["reason"] == "waiting_for_dns"
    records = {(r["type"], r["name"]): r["value"] for r in body["records"]}
    assert records[("CNAME", "pagar.padaria.test")] == TARGET
    assert records[("TXT", "_cobrador.pagar.padaria.test")].startswith("cobrador-verify=")
    create_records(dns_server, body)

    run = _sweep(clock)

    domain = _domain(body)
    assert run.items_done == 1
    assert domain.status == "verified" and domain.reason == "dns_verified" and domain.verified_at == clock.now()
    assert domain.next_ssl_attempt_at == clock.now()  # the certificate is ordered next
    assert domain.next_dns_check_at == clock.now() + timedelta(days=1)  # re-checked daily from now on
    assert Event.objects.filter(type="custom_domain.verified", organization=api.organization).count() == 1
    assert list(domain.changes.values_list("from_status", "to_status", "reason")) == [
        ("", "pending", "added"), ("pending", "verified", "dns_verified")]


def test_while_dns_propagates_the_domain_waits_with_backoff_then_is_verified(api, dns_server, clock):
    body = _add(api)
    delays = []
    for _ in range(3):  # NXDOMAIN three times: only "waiting for DNS", never an error state
        _sweep(clock)
        domain = _domain(body)
        assert domain.status == "pending" and domain.reason == "waiting_for_dns"
        assert domain.message.startswith("Waiting for DNS.")
        delays.append(domain.next_dns_check_at - clock.now())
        clock.set(domain.next_dns_check_at)
    assert delays == [timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5)]
    create_records(dns_server, body)
    _sweep(clock)
    assert _domain(body).status == "verified"


def test_a_missing_txt_record_says_what_to_create_and_that_nothing_is_there(api, dns_server, clock):
    body = _add(api)
    dns_server.set("pagar.padaria.test", "CNAME", TARGET + ".")
    _sweep(clock)
    domain = _domain(body)
    token = body["records"][0]["value"]
    assert domain.status == "pending"
    assert (f'Ownership: create a TXT record at _cobrador.pagar.padaria.test with the value "{token}"; '
            "it has no TXT record now.") in domain.message
    assert "Routing" not in domain.message
    problems = api.get(f"/v1/custom_domains/{body['id']}").json()["dns"]["problems"]
    assert [p["code"] for p in problems] == ["txt_missing"]


def test_a_wrong_cname_says_where_it_should_point_and_where_it_points_now(api, dns_server, clock):
    body = _add(api)
    create_records(dns_server, body)
    dns_server.set("pagar.padaria.test", "CNAME", "old-host.example.net.")
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "pending"
    assert ("Routing: point pagar.padaria.test at edge.cobrador.test with a CNAME record; it is a CNAME to "
            "old-host.example.net now.") in domain.message
    assert domain.dns_observed["cname"] == ["old-host.example.net"]


def test_a_txt_record_with_another_value_is_quoted_back(api, dns_server, clock):
    body = _add(api)
    create_records(dns_server, body)
    dns_server.set("_cobrador.pagar.padaria.test", "TXT", '"someone-else"')
    _sweep(clock)
    assert 'it has "someone-else" now, not this domain\'s token.' in _domain(body).message


def test_an_apex_name_may_point_a_records_at_the_configured_addresses(api, dns_server, clock, settings):
    settings.CUSTOM_DOMAIN_ADDRESSES = ["203.0.113.7"]
    body = _add(api, "padaria.test")
    dns_server.set("_cobrador.padaria.test", "TXT", f'"{body["records"][0]["value"]}"')
    dns_server.set("padaria.test", "A", "198.51.100.1")
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "pending"
    assert "(an apex name, which cannot have a CNAME: A/AAAA records to 203.0.113.7); it resolves to " \
           "198.51.100.1 now." in domain.message
    dns_server.set("padaria.test", "A", "203.0.113.7")
    clock.set(domain.next_dns_check_at)
    _sweep(clock)
    assert _domain(body).status == "verified"


def test_a_caa_record_that_forbids_the_ca_is_reported_and_blocks_verification(api, dns_server, clock):
    body = _add(api)
    create_records(dns_server, body)
    dns_server.set("padaria.test", "CAA", '0 issue "digicert.com"')
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "pending"
    assert ('CAA: the CAA records of padaria.test (0 issue "digicert.com") do not allow letsencrypt.org to '
            'issue certificates: add the CAA record padaria.test CAA 0 issue "letsencrypt.org"') in domain.message
    dns_server.set("padaria.test", "CAA", '0 issue "digicert.com"', '0 issue "letsencrypt.org"')
    clock.set(domain.next_dns_check_at)
    _sweep(clock)
    assert _domain(body).status == "verified"


def test_after_72_hours_of_waiting_the_domain_fails_and_the_organization_is_told(api, dns_server, clock):
    body = _add(api)
    start = clock.now()
    while clock.now() - start < timedelta(hours=72):
        _sweep(clock)
        domain = _domain(body)
        assert domain.status == "pending"
        clock.set(domain.next_dns_check_at)
    _sweep(clock)

    domain = _domain(body)
    assert domain.status == "failed" and domain.reason == "dns_timeout"
    assert domain.next_dns_check_at is None
    assert "were still not right after 72 hours" in domain.message and "it has no TXT record now" in domain.message
    assert f"POST /v1/custom_domains/{body['id']}/verify" in domain.message
    assert Event.objects.filter(type="custom_domain.failed").count() == 1
    [notice] = Notice.objects.filter(type="custom_domain_problem")
    assert notice.recipient == "billing@acme.test"
    # Hourly after the first half hour: about 75 checks in 72 hours, not thousands.
    assert domain.dns_checks < 80

    # Fixed and checked again on demand: a new 72 h window, verified at once.
    create_records(dns_server, body)
    answer = api.post(f"/v1/custom_domains/{body['id']}/verify").json()
    assert answer["status"] == "verified"
    assert [h["to_status"] for h in answer["history"]] == ["pending", "failed", "pending", "verified"]


def test_a_dns_server_that_does_not_answer_keeps_the_domain_waiting(api, dns_server, clock):
    body = _add(api)
    dns_server.servfail.add("_cobrador.pagar.padaria.test")
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "pending" and domain.next_dns_check_at > clock.now()


def _make_active(domain: CustomDomain, clock, *, renew_in=timedelta(days=60)) -> None:
    now = clock.now()
    domain.status, domain.verified_at, domain.activated_at = "active", now, now
    domain.certificate_serial = "abc"
    domain.certificate_not_before, domain.certificate_not_after = now, now + timedelta(days=90)
    domain.renew_at = domain.next_ssl_attempt_at = now + renew_in
    domain.next_dns_check_at = now + timedelta(days=1)
    domain.save()


def test_an_active_domain_whose_records_are_gone_is_warned_about_then_deactivated(api, dns_server, clock, down_ca):
    body = _add(api)
    create_records(dns_server, body)
    _sweep(clock)
    _make_active(_domain(body), clock, renew_in=timedelta(days=2))
    dns_server.remove("pagar.padaria.test")
    dns_server.remove("_cobrador.pagar.padaria.test")

    clock.advance(timedelta(days=1))
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "active" and domain.reason == "dns_missing"
    assert domain.dns_missing_since == clock.now()
    assert "Its certificate is not renewed meanwhile" in domain.message
    assert Notice.objects.filter(type="custom_domain_problem").count() == 1  # the warning

    # Its renewal time comes while the records are gone: no order is placed.
    clock.advance(timedelta(days=1, hours=1))
    run_job("custom-domain-ssl", as_of=clock.now(), trigger="manual")
    assert down_ca.requests == []

    while _domain(body).status == "active":
        clock.set(_domain(body).next_dns_check_at)
        _sweep(clock)
    domain = _domain(body)
    assert domain.status == "inactive" and domain.reason == "dns_gone"
    assert clock.now() - domain.dns_missing_since >= timedelta(hours=72)
    assert domain.next_ssl_attempt_at is None and domain.next_dns_check_at is None
    assert Event.objects.filter(type="custom_domain.inactive").count() == 1
    assert Notice.objects.filter(type="custom_domain_problem").count() == 2
    run_job("custom-domain-ssl", as_of=clock.now() + timedelta(days=30), trigger="manual")
    assert down_ca.requests == []


def test_records_that_come_back_in_time_keep_the_domain_active(api, dns_server, clock):
    body = _add(api)
    create_records(dns_server, body)
    _sweep(clock)
    _make_active(_domain(body), clock)
    dns_server.remove("pagar.padaria.test", "CNAME")
    clock.advance(timedelta(days=1))
    _sweep(clock)
    assert _domain(body).dns_missing_since is not None
    create_records(dns_server, body)
    clock.set(_domain(body).next_dns_check_at)
    _sweep(clock)
    domain = _domain(body)
    assert domain.status == "active" and domain.dns_missing_since is None and domain.reason == "dns_restored"


def test_no_order_is_ever_placed_for_a_domain_that_is_not_verified(api, dns_server, clock, down_ca):
    bodies = [_add(api, f"h{i}.padaria.test") for i in range(3)]
    # pending (no records), failed, inactive: none reaches the CA, whatever their timestamps say.
    CustomDomain.objects.filter(public_id=bodies[1]["id"]).update(status="failed", next_ssl_attempt_at=clock.now())
    CustomDomain.objects.filter(public_id=bodies[2]["id"]).update(status="inactive", next_ssl_attempt_at=clock.now())
    CustomDomain.objects.filter(public_id=bodies[0]["id"]).update(next_ssl_attempt_at=clock.now())
    _sweep(clock)
    for hours in (0, 1, 24, 24 * 90):
        run_job("custom-domain-ssl", as_of=clock.now() + timedelta(hours=hours), trigger="manual")
    api.post(f"/v1/custom_domains/{bodies[0]['id']}/verify")
    assert down_ca.requests == []
    assert not CustomDomainChange.objects.filter(to_status__in=["verified", "active"]).exists()
