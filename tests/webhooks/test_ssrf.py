"""The SSRF guard (design rule 10): non-public targets are refused at registration and at connect time."""

import time
from datetime import timedelta

import pytest

from cobrador.core import clock as clock_module
from cobrador.webhooks.delivery import deliver_due
from cobrador.webhooks.models import WebhookAttempt, WebhookEndpoint
from cobrador.webhooks.services import new_secret
from cobrador.webhooks.ssrf import BlockedTarget, is_forbidden_address, resolve_target
from tests.fakes.receiver import Answer
from tests.webhooks.conftest import delivery_for, emit

# Every target is "{port}"-formatted with the port of a live loopback receiver, so a target that got
# through would be seen by it.
FORBIDDEN_TARGETS = [
    "http://127.0.0.1:{port}/hooks",  # loopback
    "http://127.0.0.2:{port}/hooks",
    "http://127.1:{port}/hooks",  # short form
    "http://2130706433:{port}/hooks",  # decimal
    "http://0x7f000001:{port}/hooks",  # hex
    "http://0x7f.0x0.0x0.0x1:{port}/hooks",  # dotted hex
    "http://0177.0.0.1:{port}/hooks",  # octal
    "http://localhost:{port}/hooks",  # a name that resolves to loopback
    "http://LocalHost:{port}/hooks",
    "http://[::1]:{port}/hooks",  # IPv6 loopback
    "http://[0:0:0:0:0:0:0:1]:{port}/hooks",
    "http://[::ffff:127.0.0.1]:{port}/hooks",  # IPv4-mapped IPv6
    "http://[::ffff:7f00:1]:{port}/hooks",
    "http://[::127.0.0.1]:{port}/hooks",  # IPv4-compatible IPv6
    "http://[64:ff9b::7f00:1]:{port}/hooks",  # NAT64
    "http://[2002:7f00:1::]:{port}/hooks",  # 6to4
    "http://0.0.0.0:{port}/hooks",  # unspecified
    "http://0:{port}/hooks",
    "http://[::]:{port}/hooks",
    "http://10.0.0.1:{port}/hooks",  # private
    "http://10.255.255.254:{port}/hooks",
    "http://172.16.0.1:{port}/hooks",
    "http://172.31.255.1:{port}/hooks",
    "http://192.168.0.1:{port}/hooks",
    "http://167772161:{port}/hooks",  # 10.0.0.1, decimal
    "http://0x0a000001:{port}/hooks",  # 10.0.0.1, hex
    "http://100.64.0.1:{port}/hooks",  # CGNAT
    "http://100.127.255.254:{port}/hooks",
    "http://169.254.169.254:{port}/latest/meta-data/",  # link-local, cloud metadata
    "http://169.254.0.1:{port}/hooks",
    "http://2852039166:{port}/latest/meta-data/",  # 169.254.169.254, decimal
    "http://0xa9fea9fe:{port}/latest/meta-data/",  # 169.254.169.254, hex
    "http://[::ffff:169.254.169.254]:{port}/latest/meta-data/",
    "http://[fd00:ec2::254]:{port}/latest/meta-data/",  # unique local (AWS IPv6 metadata)
    "http://[fe80::1]:{port}/hooks",  # IPv6 link-local
    "http://[fc00::1]:{port}/hooks",
    "http://224.0.0.1:{port}/hooks",  # multicast
    "http://[ff02::1]:{port}/hooks",
    "http://255.255.255.255:{port}/hooks",  # broadcast
    "http://192.0.2.1:{port}/hooks",  # documentation (reserved)
    "http://198.18.0.1:{port}/hooks",  # benchmarking (reserved)
    "http://240.0.0.1:{port}/hooks",  # reserved
    "https://127.0.0.1:{port}/hooks",
    "ftp://127.0.0.1:{port}/hooks",  # non-http schemes
    "file:///etc/passwd",
    "gopher://127.0.0.1:{port}/_HELLO",
    "dict://127.0.0.1:{port}/info",
    "javascript:alert(1)",
    "http://user:password@127.0.0.1:{port}/hooks",  # credentials in the URL
    "http://no-such-host.invalid:{port}/hooks",  # does not resolve
]


def test_at_least_30_targets_are_covered():
    assert len(FORBIDDEN_TARGETS) >= 30
    assert len(set(FORBIDDEN_TARGETS)) == len(FORBIDDEN_TARGETS)


@pytest.fixture
def guarded(settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False


@pytest.mark.parametrize("template", FORBIDDEN_TARGETS)
def test_refused_at_registration(api, guarded, template):
    url = template.format(port=8080)  # registration never connects
    response = api.post("/v1/webhook_endpoints", {"url": url})
    assert response.status_code == 422, (url, response.content)
    assert response.json()["error"]["field"] == "url"
    assert not WebhookEndpoint.objects.exists()


def test_refused_when_changing_the_url(api, receiver, settings):
    created = api.post("/v1/webhook_endpoints", {"url": receiver.url}).json()  # allowed: tests' setting
    settings.WEBHOOK_ALLOW_PRIVATE = False
    response = api.patch(f"/v1/webhook_endpoints/{created['id']}", {"url": "http://169.254.169.254/"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "url"
    assert WebhookEndpoint.objects.get(public_id=created["id"]).url == receiver.url


def test_refused_at_connect_time(api, receiver, guarded, clock):
    """Rows that bypassed registration (older rules, direct writes, DNS that changed) are still refused."""
    port = receiver._server.server_address[1]
    now = clock_module.now()
    WebhookEndpoint.objects.bulk_create([
        WebhookEndpoint(organization=api.organization, url=template.format(port=port), enabled_events=["*"],
                        secret=new_secret(), created_at=now, updated_at=now)
        for template in FORBIDDEN_TARGETS
    ])
    event = emit(api.organization)
    assert deliver_due() == len(FORBIDDEN_TARGETS)
    time.sleep(0.3)
    assert receiver.received == []
    attempts = list(WebhookAttempt.objects.filter(delivery__event=event).select_related("delivery__endpoint"))
    assert len(attempts) == len(FORBIDDEN_TARGETS)
    for attempt in attempts:
        assert attempt.error.startswith("blocked:"), (attempt.delivery.endpoint.url, attempt.error)
        assert attempt.status_code is None and not attempt.succeeded
        assert attempt.delivery.status == "pending"  # retried on the schedule, refused each time
    clock.advance(timedelta(seconds=6))
    assert deliver_due() == len(FORBIDDEN_TARGETS)
    time.sleep(0.1)
    assert receiver.received == []


def test_the_same_rows_are_delivered_when_private_targets_are_allowed(api, receiver, settings):
    """The control for the test above: only the guard stops these requests."""
    port = receiver._server.server_address[1]
    now = clock_module.now()
    endpoint = WebhookEndpoint.objects.create(
        organization=api.organization, url=f"http://2130706433:{port}/hooks", enabled_events=["*"],
        secret=new_secret(), created_at=now, updated_at=now)
    receiver.secrets.append(endpoint.secret)
    emit(api.organization)
    deliver_due()
    [request] = receiver.wait_for(1)
    assert request.verified_with == [endpoint.secret]
    assert request.headers["host"] == f"2130706433:{port}"


def test_a_redirect_to_a_private_address_is_not_followed(api, receiver, second_receiver):
    """The first receiver (allowed here by the tests' setting) answers 302 to another loopback receiver."""
    created = api.post("/v1/webhook_endpoints", {"url": receiver.url}).json()
    receiver.default = Answer(status=302, headers={"Location": second_receiver.url})
    event = emit(api.organization)
    deliver_due()
    receiver.wait_for(1)
    time.sleep(0.3)
    assert second_receiver.received == []
    [attempt] = delivery_for(event, created).attempts.all()
    assert attempt.status_code == 302 and not attempt.succeeded


def _fake_dns(monkeypatch, *answers):
    """socket.getaddrinfo answering each lookup with the next list of addresses (DNS rebinding)."""
    import socket

    pending = list(answers)

    def getaddrinfo(host, port, *args, **kwargs):
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
                for a in pending.pop(0)]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_the_connection_goes_to_the_checked_address(monkeypatch):
    """DNS answers that change between check and connect cannot move the request: the URL is pinned."""
    _fake_dns(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    target = resolve_target("https://hooks.example.com/in?x=1", allow_private=False)
    assert target.url == "https://93.184.216.34:443/in?x=1"
    assert target.host_header == "hooks.example.com"
    assert target.sni_hostname == "hooks.example.com"
    with pytest.raises(BlockedTarget):  # the second answer is refused
        resolve_target("https://hooks.example.com/in", allow_private=False)


def test_a_name_with_any_private_address_is_refused(monkeypatch):
    _fake_dns(monkeypatch, ["93.184.216.34", "10.0.0.5"])
    with pytest.raises(BlockedTarget, match="10.0.0.5"):
        resolve_target("https://multi.example.com/", allow_private=False)


def test_a_name_that_rebinds_to_loopback_is_refused_at_connect_time(api, receiver, settings, monkeypatch):
    """Registered while its name resolved to a public address; at send time it resolves to loopback."""
    settings.WEBHOOK_ALLOW_PRIVATE = False
    _fake_dns(monkeypatch, ["93.184.216.34"], ["127.0.0.1"])
    port = receiver._server.server_address[1]
    created = api.post("/v1/webhook_endpoints", {"url": f"http://rebind.example.com:{port}/hooks"})
    assert created.status_code == 201, created.content
    event = emit(api.organization)
    deliver_due()
    time.sleep(0.2)
    assert receiver.received == []
    [attempt] = delivery_for(event, created.json()).attempts.all()
    assert attempt.error.startswith("blocked:") and "127.0.0.1" in attempt.error


@pytest.mark.parametrize("address,forbidden", [
    ("8.8.8.8", False), ("93.184.216.34", False), ("2001:4860:4860::8888", False),
    ("::ffff:8.8.8.8", False), ("64:ff9b::808:808", False),
    ("127.0.0.1", True), ("10.1.2.3", True), ("100.64.0.1", True), ("169.254.169.254", True),
    ("::1", True), ("::ffff:10.0.0.1", True), ("2001::1", True), ("fe80::1", True), ("ff02::1", True),
])
def test_address_classification(address, forbidden):
    import ipaddress

    assert is_forbidden_address(ipaddress.ip_address(address)) is forbidden


def test_a_public_address_is_accepted():
    target = resolve_target("http://93.184.216.34:8080/x", allow_private=False)
    assert target.url == "http://93.184.216.34:8080/x"
    assert target.host_header == "93.184.216.34:8080"
