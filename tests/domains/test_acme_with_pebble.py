"""The whole path against Debian's pebble and nginx on loopback: add a domain, create its records in the
tests' DNS, watch pending -> verified -> active, and open the hosted invoice page through nginx with a TLS
handshake for that name verified against pebble's root; renewal under the clock; a CA outage during renewal.

Marked `acme` (CI runs them once, on SQLite). pebble's validation sleeps and nonce rejections are off.
"""

import datetime as dt
import os
import stat
from types import SimpleNamespace

import pytest
from cryptography import x509

from cobrador.core import clock as clock_module
from cobrador.domains import publishing
from cobrador.domains.models import AcmeAccount, AcmeChallenge, CustomDomain
from cobrador.events.models import Event
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from tests.domains.conftest import CountingCa, create_records
from tests.domains.servers import Nginx, Pebble, have_servers, https_get
from tests.notifications.conftest import make_account
from tests.pages.factories import invoice_with_documents, page_link

HOST = "pagar.padaria.test"

pytestmark = [
    pytest.mark.acme,
    pytest.mark.skipif(not have_servers(), reason="needs Debian's pebble and nginx (apt-get install pebble nginx)"),
    pytest.mark.django_db(transaction=True),
]


@pytest.fixture
def stack(tmp_path, settings, dns_server, cert_dir, live_server):
    clock_module.set(dt.datetime.now(dt.UTC))  # pebble issues in real time; cobrador's clock starts there
    nginx = Nginx(tmp_path / "nginx", cert_dir=cert_dir, upstream=live_server.url.split("://", 1)[1])
    pebble = Pebble(tmp_path / "pebble", dns_address=dns_server.address, http_port=nginx.http_port)
    settings.ACME_DIRECTORY = pebble.directory_url
    settings.ACME_CA_BUNDLE = str(pebble.ca_bundle)
    settings.ACME_CONCURRENCY = 2
    root = tmp_path / "pebble-root.pem"
    root.write_bytes(pebble.root_pem())
    yield SimpleNamespace(nginx=nginx, pebble=pebble, root=root, dns=dns_server, cert_dir=cert_dir)
    nginx.stop()
    pebble.stop()
    clock_module.set(None)


def _run(name: str):
    return run_job(name, as_of=clock_module.now(), trigger="manual")


def _activate(api, stack) -> CustomDomain:
    body = api.post("/v1/custom_domains", {"hostname": HOST}).json()
    assert body["status"] == "pending"
    create_records(stack.dns, body)
    _run("custom-domain-dns")
    domain = CustomDomain.objects.get(public_id=body["id"])
    assert domain.status == "verified"
    run = _run("custom-domain-ssl")
    domain.refresh_from_db()
    assert domain.status == "active", (domain.ssl_error, run.error, stack.pebble.log.read_text()[-3000:])
    return domain


def _published_serial() -> str:
    return publishing.published_serial(HOST)


def test_a_domain_goes_active_and_serves_the_hosted_invoice_page_over_tls(api, other_api, stack):
    domain = _activate(api, stack)

    assert [h["to_status"] for h in api.get(f"/v1/custom_domains/{domain.public_id}").json()["history"]] == [
        "pending", "verified", "active"]
    assert Event.objects.filter(type__in=["custom_domain.verified", "custom_domain.active"]).count() == 2
    assert AcmeChallenge.objects.count() == 0  # the HTTP-01 answers are gone once the order is done
    assert AcmeAccount.objects.count() == 1
    # Encrypted at rest: the database holds Fernet tokens, never the PEM.
    from django.db import connection
    with connection.cursor() as cursor:
        cursor.execute("SELECT private_key_pem, certificate_pem FROM domains_customdomain")
        raw_key, raw_cert = cursor.fetchone()
    assert "PRIVATE KEY" not in raw_key and "CERTIFICATE" not in raw_cert
    assert domain.private_key_pem.startswith("-----BEGIN PRIVATE KEY-----")

    chain, key = publishing.paths(HOST)
    assert stat.S_IMODE(os.stat(chain).st_mode) == 0o600 and stat.S_IMODE(os.stat(key).st_mode) == 0o600
    assert _published_serial() == domain.certificate_serial

    mine = page_link(api.organization, "invoice", invoice_with_documents(make_account(api.organization)).public_id)
    status, body, peer = https_get(stack.nginx.https_port, HOST, mine, cafile=stack.root)
    assert status == 200, body[:500]
    assert "Pro × 1".encode() in body
    assert peer.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
        x509.DNSName) == [HOST]
    assert format(peer.serial_number, "x") == domain.certificate_serial

    theirs = page_link(other_api.organization, "invoice",
                       invoice_with_documents(make_account(other_api.organization)).public_id)
    assert https_get(stack.nginx.https_port, HOST, theirs, cafile=stack.root)[0] == 404
    assert https_get(stack.nginx.https_port, HOST, "/v1/custom_domains", cafile=stack.root)[0] == 404
    assert https_get(stack.nginx.https_port, HOST, "/admin/login/", cafile=stack.root)[0] == 404


def test_renewal_under_the_clock_issues_and_publishes_a_new_certificate(api, stack):
    domain = _activate(api, stack)
    first = domain.certificate_serial
    lifetime = domain.certificate_not_after - domain.certificate_not_before
    # Whichever comes first: 30 days left, or a third of the lifetime left.
    assert domain.renew_at == domain.certificate_not_after - max(dt.timedelta(days=30), lifetime / 3)
    assert domain.next_ssl_attempt_at == domain.renew_at  # pebble 2.4 offers no renewal information

    clock_module.set(domain.renew_at - dt.timedelta(minutes=1))
    _run("custom-domain-ssl")
    domain.refresh_from_db()
    assert domain.certificate_serial == first

    clock_module.set(domain.renew_at)
    _run("custom-domain-ssl")
    domain.refresh_from_db()
    assert domain.status == "active" and domain.reason == "certificate_renewed"
    assert domain.certificate_serial != first
    assert _published_serial() == domain.certificate_serial
    assert Event.objects.filter(type="custom_domain.certificate_renewed").count() == 1
    _, _, peer = https_get(stack.nginx.https_port, HOST, "/pages/i/x/", cafile=stack.root)
    assert format(peer.serial_number, "x") == domain.certificate_serial


def test_a_ca_outage_during_renewal_keeps_the_old_certificate_and_backs_off(api, stack, settings):
    domain = _activate(api, stack)
    first = domain.certificate_serial
    down = CountingCa(status=503, retry_after="7200")
    settings.ACME_DIRECTORY = down.url
    try:
        clock_module.set(domain.renew_at)
        run = _run("custom-domain-ssl")
        domain.refresh_from_db()
        assert run.items_failed == 1 and len(down.requests) == 1
        assert domain.certificate_serial == first and _published_serial() == first
        assert domain.ssl_failures == 1 and "HTTP 503" in domain.ssl_error
        assert domain.next_ssl_attempt_at >= clock_module.now() + dt.timedelta(seconds=7200)  # Retry-After
        _, _, peer = https_get(stack.nginx.https_port, HOST, "/pages/i/x/", cafile=stack.root)
        assert format(peer.serial_number, "x") == first  # the old one keeps serving

        clock_module.advance(dt.timedelta(hours=1))
        _run("custom-domain-ssl")
        assert len(down.requests) == 1  # not before Retry-After

        for _ in range(2):
            domain.refresh_from_db()
            clock_module.set(domain.next_ssl_attempt_at)
            _run("custom-domain-ssl")
        domain.refresh_from_db()
        assert domain.ssl_failures == 3 and domain.reason == "renewal_failing"
        assert Event.objects.filter(type="custom_domain.certificate_renewal_failed").count() == 1
        assert Notice.objects.filter(type="custom_domain_problem", recipient="billing@acme.test").count() == 1
    finally:
        down.close()

    settings.ACME_DIRECTORY = stack.pebble.directory_url  # the CA is back
    clock_module.set(domain.next_ssl_attempt_at)
    _run("custom-domain-ssl")
    domain.refresh_from_db()
    assert domain.certificate_serial != first and _published_serial() == domain.certificate_serial
    assert domain.ssl_failures == 0 and domain.ssl_error == ""
