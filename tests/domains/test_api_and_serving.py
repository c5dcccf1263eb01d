"""The /v1/custom_domains API (hostnames, one organization per hostname, cross-organization 404s) and what
a request for a custom hostname can reach (only its organization's hosted pages)."""

import re
import stat
from datetime import timedelta

import pytest
from django.conf import settings
from django.db import transaction
from django.test import Client

from cobrador.domains import publishing, services
from cobrador.domains.models import AcmeChallenge, CustomDomain
from cobrador.pages import links
from cobrador.proposals.models import Proposal
from tests.notifications.conftest import make_account
from tests.pages.factories import invoice_with_documents, page_link
from tests.pages.test_pages import _sent_proposal_path

pytestmark = pytest.mark.django_db


def test_hostnames_are_normalized_to_lower_case_idna(api, dns_server):
    response = api.post("/v1/custom_domains", {"hostname": " Pagar.Padaria-São.Com.BR. "})
    assert response.status_code == 201
    assert response.json()["hostname"] == "pagar." + "padaria-são".encode("idna").decode() + ".com.br"


@pytest.mark.parametrize("hostname, says", [
    ("", "at least 1 character"),
    ("   ", "a hostname is required"),
    ("https://pagar.example.com/", "bare hostname"),
    ("pagar.example.com:8443", "bare hostname"),
    ("*.example.com", "wildcard"),
    ("192.0.2.1", "IP address"),
    ("localhost", "at least two"),
    ("-bad-.example.com", "must not start or end with a hyphen"),
    ("under_score.example.com", "U+005F at position 6"),
    ("a" * 64 + ".example.com", "not a valid hostname"),
    ("edge.cobrador.test", "cobrador's own hostname"),
    ("x.edge.cobrador.test", "cobrador's own hostname"),
])
def test_bad_hostnames_are_refused_naming_the_field(api, dns_server, hostname, says):
    response = api.post("/v1/custom_domains", {"hostname": hostname})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == "hostname" and says in error["message"], error
    assert not CustomDomain.objects.exists()


def test_the_same_hostname_is_refused_for_a_second_organization_and_freed_by_removal(api, other_api, dns_server):
    first = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    response = other_api.post("/v1/custom_domains", {"hostname": "PAGAR.padaria.test"})
    assert response.status_code == 409
    assert response.json()["error"] == {"type": "hostname_taken", "field": "hostname", "message":
                                        "pagar.padaria.test is already a custom domain of another organization",
                                        "errors": [{"field": "hostname", "message": "pagar.padaria.test is already "
                                                    "a custom domain of another organization"}]}
    assert api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).status_code == 409

    assert api.delete(f"/v1/custom_domains/{first['id']}").status_code == 204
    assert other_api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).status_code == 201
    assert CustomDomain.objects.filter(hostname="pagar.padaria.test").count() == 2  # the removed one kept


def test_another_organizations_domain_is_a_404_everywhere(api, other_api, dns_server):
    domain = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    for method, path in (("get", ""), ("post", "/verify"), ("delete", "")):
        response = getattr(other_api, method)(f"/v1/custom_domains/{domain['id']}{path}")
        assert response.status_code == 404, (method, path)
    assert other_api.get("/v1/custom_domains").json()["data"] == []
    assert [d["id"] for d in api.get("/v1/custom_domains").json()["data"]] == [domain["id"]]
    assert CustomDomain.objects.get(public_id=domain["id"]).status == "pending"


def test_list_get_and_remove(api, dns_server, cert_dir):
    domain = api.post("/v1/custom_domains", {"hostname": "pagar.padaria.test"}).json()
    detail = api.get(f"/v1/custom_domains/{domain['id']}").json()
    assert detail["history"][0]["reason"] == "added" and detail["certificate"] is None
    publishing.publish("pagar.padaria.test", "chain", "key")
    assert api.delete(f"/v1/custom_domains/{domain['id']}").status_code == 204
    assert not any(cert_dir.iterdir())  # no longer served
    assert api.get("/v1/custom_domains").json()["data"] == []
    assert api.get("/v1/custom_domains", params={"status": "removed"}).json()["data"][0]["status"] == "removed"
    response = api.post(f"/v1/custom_domains/{domain['id']}/verify")
    assert response.status_code == 409 and response.json()["error"]["type"] == "custom_domain_removed"


def test_published_files_are_private_and_replaced_whole(cert_dir):
    publishing.publish("pagar.padaria.test", "CHAIN-1", "KEY-1")
    chain, key = publishing.paths("pagar.padaria.test")
    assert chain.read_text() == "CHAIN-1" and key.read_text() == "KEY-1"
    assert stat.S_IMODE(chain.stat().st_mode) == 0o600 and stat.S_IMODE(key.stat().st_mode) == 0o600
    inode = chain.stat().st_ino
    publishing.publish("pagar.padaria.test", "CHAIN-2", "KEY-2")
    assert chain.read_text() == "CHAIN-2" and chain.stat().st_ino != inode  # a new file renamed over the old
    assert sorted(p.name for p in cert_dir.iterdir()) == ["pagar.padaria.test.fullchain.pem",
                                                          "pagar.padaria.test.key.pem"]


@pytest.mark.parametrize("days", [6, 45, 64, 90])
def test_without_renewal_information_renewal_leaves_a_third_of_the_lifetime_or_30_days(clock, days):
    start = clock.now()
    end = start + timedelta(days=days)
    renew_at = services.fallback_renew_at(start, end)
    assert start + timedelta(days=days) / 3 <= renew_at <= end - timedelta(days=days) / 3
    assert end - renew_at == max(min(timedelta(days=30), timedelta(days=days) * 2 / 3), timedelta(days=days) / 3)
    expected_days_left = {6: 4, 45: 30, 64: 30, 90: 30}[days]
    assert end - renew_at == timedelta(days=expected_days_left)


def _active(api, hostname) -> CustomDomain:
    body = api.post("/v1/custom_domains", {"hostname": hostname}).json()
    CustomDomain.objects.filter(public_id=body["id"]).update(status="active")
    return CustomDomain.objects.get(public_id=body["id"])


def test_a_custom_hostname_serves_only_its_organizations_pages(api, other_api, dns_server, clock):
    _active(api, "pagar.padaria.test")
    mine = page_link(api.organization, "invoice",
                     invoice_with_documents(make_account(api.organization)).public_id)
    theirs = page_link(other_api.organization, "invoice",
                       invoice_with_documents(make_account(other_api.organization)).public_id)
    browser = Client(HTTP_HOST="pagar.padaria.test")

    assert browser.get(mine).status_code == 200
    assert browser.get(theirs).status_code == 404  # another organization's page, on this one's domain
    assert Client().get(theirs).status_code == 200  # ... which opens on cobrador's own host
    for path in ("/v1/custom_domains", "/v1/openapi.json", "/admin/", "/admin/login/", "/healthz", "/metrics",
                 "/"):
        assert browser.get(path).status_code == 404, path
    response = browser.get("/v1/custom_domains", HTTP_AUTHORIZATION=f"Bearer {api.key}")
    assert response.status_code == 404  # not even with the organization's own key


def test_a_domain_that_is_not_active_serves_no_pages_but_answers_acme_challenges(api, dns_server, clock):
    domain = _active(api, "pagar.padaria.test")
    CustomDomain.objects.filter(pk=domain.pk).update(status="verified")
    mine = page_link(api.organization, "invoice", invoice_with_documents(make_account(api.organization)).public_id)
    AcmeChallenge.objects.create(token="tok-123", key_authorization="tok-123.thumb", hostname=domain.hostname,
                                 created_at=clock.now())
    browser = Client(HTTP_HOST="pagar.padaria.test")
    assert browser.get(mine).status_code == 404
    response = browser.get("/.well-known/acme-challenge/tok-123")
    assert response.status_code == 200 and response.content == b"tok-123.thumb"
    assert browser.get("/.well-known/acme-challenge/other").status_code == 404


def test_a_proposal_is_accepted_on_the_custom_domain_behind_the_tls_server(api, dns_server, clock):
    _active(api, "pagar.padaria.test")
    proposal, path = _sent_proposal_path(api, locale="en")
    browser = Client(enforce_csrf_checks=True, HTTP_HOST="pagar.padaria.test", HTTP_X_FORWARDED_PROTO="https")
    page = browser.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    answer = browser.post(path + "accept", {"csrfmiddlewaretoken": token},
                          HTTP_ORIGIN="https://pagar.padaria.test", HTTP_REFERER=f"https://pagar.padaria.test{path}")

    assert answer.status_code == 302, answer.content[:300]
    assert Proposal.objects.get(public_id=proposal["id"]).status == "accepted"


def test_page_links_of_an_organization_with_an_active_domain_point_at_it(api, other_api, dns_server):
    domain = _active(api, "pagar.padaria.test")
    invoice = invoice_with_documents(make_account(api.organization))
    with transaction.atomic():
        _, url = links.create_link(organization=api.organization, kind="invoice", object_id=invoice.public_id)
        minted = links.mint_links("invoice", [(api.organization.pk, invoice.public_id),
                                              (other_api.organization.pk, "in_other")])
    assert url.startswith("https://pagar.padaria.test/pages/i/")
    assert minted[(api.organization.pk, invoice.public_id)].startswith("https://pagar.padaria.test/pages/i/")
    assert minted[(other_api.organization.pk, "in_other")].startswith(settings.PUBLIC_URL + "/pages/i/")
    assert Client(HTTP_HOST="pagar.padaria.test").get(url.split("pagar.padaria.test", 1)[1]).status_code == 200

    CustomDomain.objects.filter(pk=domain.pk).update(status="inactive")  # no longer served: links go home
    with transaction.atomic():
        _, url = links.create_link(organization=api.organization, kind="invoice", object_id=invoice.public_id)
    assert url.startswith(settings.PUBLIC_URL + "/pages/i/")
