"""ACME Renewal Information (RFC 9773): when the CA's directory offers `renewalInfo`, renewal happens at a
time inside the window it suggests and the advice is asked again at its Retry-After. (Debian's pebble 2.4
has no renewalInfo, so this CA is a small HTTP server speaking that one resource.)"""

import base64
import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from acme import client, messages
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from cobrador.domains import acme, issuing


def _certificate(now: dt.datetime) -> tuple[str, str]:
    """A 90-day leaf under a throwaway issuer; returns (PEM, the ARI id a CA would compute for it)."""
    issuer_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "issuer")])
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key())
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x.test")]))
            .issuer_name(name).public_key(key.public_key()).serial_number(0x87654321ABCDEF)
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=90))
            .add_extension(aki, critical=False).sign(issuer_key, hashes.SHA256()))
    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    # RFC 9773 section 4.1's example encoding: the serial's DER content octets (a leading 0x00 when the
    # high bit is set), here 0x0087654321ABCDEF.
    expected = f"{b64(aki.key_identifier)}.{b64(bytes.fromhex('0087654321ABCDEF'))}"
    return leaf.public_bytes(serialization.Encoding.PEM).decode(), expected


@pytest.fixture
def ari_ca():
    state = {"asked": [], "window": None}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            state["asked"].append(self.path)
            start, end = state["window"]
            body = json.dumps({"suggestedWindow": {"start": start, "end": end}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Retry-After", "21600")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    net = client.ClientNetwork(key=None, verify_ssl=False)
    directory = messages.Directory.from_json({
        "newNonce": "http://127.0.0.1/n", "newAccount": "http://127.0.0.1/a", "newOrder": "http://127.0.0.1/o",
        "renewalInfo": f"http://127.0.0.1:{server.server_address[1]}/renewal-info"})
    yield client.ClientV2(directory, net), state
    server.shutdown()
    server.server_close()


def test_renewal_comes_inside_the_cas_suggested_window_and_the_advice_is_asked_again(ari_ca, clock):
    acme_client, state = ari_ca
    now = clock.now()
    pem, certificate_id = _certificate(now)
    state["window"] = ("2026-05-01T00:00:00Z", "2026-05-03T00:00:00Z")

    renew_at, next_look = issuing._renewal_plan(acme_client, pem, now, now + dt.timedelta(days=90), now)

    assert state["asked"] == [f"/renewal-info/{certificate_id}"]
    assert dt.datetime(2026, 5, 1, tzinfo=dt.UTC) <= renew_at <= dt.datetime(2026, 5, 3, tzinfo=dt.UTC)
    # Not the fallback rule's day 60 (2026-04-30): the CA's window wins.
    assert renew_at > now + dt.timedelta(days=60)
    assert next_look == now + dt.timedelta(seconds=21600)  # Retry-After: ask again in 6 hours


def test_a_window_moved_earlier_by_the_ca_renews_now(ari_ca, clock):
    acme_client, state = ari_ca
    now = clock.now()
    pem, _ = _certificate(now - dt.timedelta(days=10))
    state["window"] = ("2026-02-27T00:00:00Z", "2026-02-28T00:00:00Z")  # e.g. the CA will revoke it
    renew_at, _ = issuing._renewal_plan(acme_client, pem, now, now + dt.timedelta(days=80), now)
    assert renew_at < now


def test_without_renewal_information_the_fallback_rule_stands(clock):
    net = client.ClientNetwork(key=None, verify_ssl=False)
    directory = messages.Directory.from_json({"newNonce": "http://127.0.0.1/n"})
    now = clock.now()
    pem, _ = _certificate(now)
    renew_at, next_look = issuing._renewal_plan(client.ClientV2(directory, net), pem, now,
                                                now + dt.timedelta(days=90), now)
    assert renew_at == next_look == now + dt.timedelta(days=60)
    assert acme.renewal_window(client.ClientV2(directory, net), pem) is None
