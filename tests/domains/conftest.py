"""Fixtures of the custom domain tests: the tests' own DNS server on loopback, a certificate directory, and
an HTTP server standing in for an ACME directory that must not be (or cannot be) reached."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.fakes.dns_server import DnsServer

TARGET = "edge.cobrador.test"
EDGE_ADDRESS = "127.0.0.1"


@pytest.fixture
def dns_server(settings):
    server = DnsServer().start()
    settings.DNS_NAMESERVERS = [server.address]
    settings.DNS_TIMEOUT = 2.0
    settings.CUSTOM_DOMAIN_TARGET = TARGET
    settings.CUSTOM_DOMAIN_ADDRESSES = []
    server.set(TARGET, "A", EDGE_ADDRESS)
    yield server
    server.stop()


@pytest.fixture
def cert_dir(settings, tmp_path):
    settings.CERT_DIR = tmp_path / "certs"
    return settings.CERT_DIR


def create_records(server: DnsServer, domain: dict) -> None:
    """The records the API answered for `domain`, created in the test zone."""
    for record in domain["records"]:
        if record["type"] in ("TXT", "CNAME"):
            server.set(record["name"], record["type"], f'"{record["value"]}"' if record["type"] == "TXT"
                       else record["value"] + ".")


class CountingCa:
    """An HTTP server on loopback that counts every request and answers `status` (503 with Retry-After by
    default): a CA that is down, or one that must never be asked."""

    def __init__(self, status: int = 503, retry_after: str = "7200"):
        self.requests: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                outer.requests.append(f"{self.command} {self.path}")
                self.send_response(status)
                if retry_after:
                    self.send_header("Retry-After", retry_after)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_GET = do_POST = do_HEAD = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/dir"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def down_ca(settings):
    ca = CountingCa()
    settings.ACME_DIRECTORY = ca.url
    yield ca
    ca.close()
