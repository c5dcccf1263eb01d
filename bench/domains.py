"""Custom domains benchmark: verification and issuance against Debian's pebble, and the DNS sweep, each
against a ceiling measured in the same run.

    python bench/domains.py --n 200 --dns-n 10000        # SQLite in a temporary directory
    python bench/domains.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench_domains

1. Issuance: N domains are added (services), their TXT and CNAME records created in a DNS server on
   loopback (tests/fakes/dns_server.py), then custom-domain-dns verifies them and custom-domain-ssl orders
   their certificates from pebble (validation sleeps and nonce rejections off), answering HTTP-01 from the
   real Django application (cobrador's WSGI handler on loopback, reading the challenges from the database),
   and publishes them. The rate: domains verified and issued per second, end to end.
   Its ceiling: a raw loop of the same ACME orders (N other names) with the same `acme` library, the same
   account kind and the same concurrency (COBRADOR_ACME_CONCURRENCY threads), HTTP-01 answered from a dict
   in memory, no database. Target: >= 0.5 of the ceiling's rate.
2. The DNS sweep over DNS_N pending domains whose records are right (they all become verified: bulk
   updates, change rows, events), against the same number of raw resolver queries: the very (name, type)
   queries the sweep made, replayed with dnspython's async resolver at the same concurrency against the
   same server. Target: >= 0.5 of the ceiling's rate.

Prints one JSON object with the figures, the ceilings, the ratios and `meets_targets`.
"""

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from _common import REPO, add_database_argument, fresh_database, machine_cpu_seconds, print_json

sys.path.insert(0, str(REPO))
from tests.domains.servers import Pebble, free_port  # noqa: E402 - the tests' pebble launcher
from tests.fakes.dns_server import DnsServer  # noqa: E402

TARGET = "edge.bench.test"
TARGET_RATIO = 0.5


def _serve_django(port: int) -> None:
    from django.core.handlers.wsgi import WSGIHandler
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadedWSGIServer(("127.0.0.1", port), Quiet, allow_reuse_address=True)
    server.set_app(WSGIHandler())
    threading.Thread(target=server.serve_forever, daemon=True).start()


def _add_domains(organization, names: list[str], dns_server: DnsServer) -> None:
    from django.db import transaction

    from cobrador.domains import services

    with transaction.atomic():
        for name in names:
            domain = services.add_custom_domain(organization=organization, hostname=name)
            dns_server.set(f"_cobrador.{name}", "TXT", f'"{domain.verification_token}"')
            dns_server.set(name, "CNAME", TARGET + ".")


def measure_issuance(organization, n: int, concurrency: int, dns_server: DnsServer) -> dict:
    from cobrador.core import clock
    from cobrador.domains import issuing, verification
    from cobrador.domains.models import CustomDomain

    names = [f"d{i}.issue.bench.test" for i in range(n)]
    _add_domains(organization, names, dns_server)
    start = time.perf_counter()
    dns_totals = verification.check_due(as_of=clock.now())
    ssl_totals = issuing.issue_due(as_of=clock.now(), concurrency=concurrency)
    seconds = time.perf_counter() - start
    active = CustomDomain.objects.filter(status="active", hostname__in=names).count()
    return {"domains": n, "verified": dns_totals["verified"], "active": active, "outcomes": dict(ssl_totals),
            "seconds": round(seconds, 2), "per_second": round(active / seconds, 3)}


class _Answers(BaseHTTPRequestHandler):
    tokens: dict[str, str] = {}

    def do_GET(self):
        answer = self.tokens.get(self.path.rsplit("/", 1)[-1])
        body = (answer or "").encode()
        self.send_response(200 if answer else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def measure_raw_orders(n: int, concurrency: int, directory_url: str, ca_bundle: str, http_port: int,
                       dns_server: DnsServer) -> dict:
    """The same orders with the same library and concurrency, straight: the ceiling."""
    import datetime as dt

    import josepy as jose
    from acme import challenges, client, crypto_util, messages
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    server = ThreadingHTTPServer(("127.0.0.1", http_port), _Answers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    local = threading.local()

    def acme_client():
        if getattr(local, "client", None) is None:
            net = client.ClientNetwork(jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), alg=jose.ES256,
                                       verify_ssl=ca_bundle, user_agent="bench-raw")
            acme = client.ClientV2(client.ClientV2.get_directory(directory_url, net), net)
            net.account = acme.new_account(messages.NewRegistration.from_data(terms_of_service_agreed=True))
            local.client = acme
        return local.client

    def order(name: str) -> bool:
        acme = acme_client()
        key = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        orderr = acme.new_order(crypto_util.make_csr(key, [name]))
        for authzr in orderr.authorizations:
            challb = next(c for c in authzr.body.challenges if isinstance(c.chall, challenges.HTTP01))
            response, validation = challb.response_and_validation(acme.net.key)
            _Answers.tokens[challb.chall.encode("token")] = validation
            acme.answer_challenge(challb, response)
        return bool(acme.poll_and_finalize(orderr, dt.datetime.now() + dt.timedelta(seconds=90)).fullchain_pem)

    names = [f"r{i}.raw.bench.test" for i in range(n)]
    for name in names:
        dns_server.set(name, "CNAME", TARGET + ".")
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        start = time.perf_counter()
        issued = sum(pool.map(order, names))
        seconds = time.perf_counter() - start
    server.shutdown()
    server.server_close()
    return {"orders": n, "issued": issued, "seconds": round(seconds, 2), "per_second": round(issued / seconds, 3)}


def measure_dns(organization, n: int, dns_server: DnsServer) -> dict:
    import dns.resolver as dns_resolver
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.core.bulk import build, insert_objects
    from cobrador.core.ids import new_public_id
    from cobrador.domains import dns, verification
    from cobrador.domains.models import CustomDomain

    now = clock.now()
    objs = []
    for i in range(n):
        name, token = f"p{i}.dns.bench.test", f"cobrador-verify=bench{i}"
        dns_server.set(f"_cobrador.{name}", "TXT", f'"{token}"')
        dns_server.set(name, "CNAME", TARGET + ".")
        objs.append(build(CustomDomain, public_id=new_public_id("cd"), organization=organization, hostname=name,
                          verification_token=token, status="pending", reason="waiting_for_dns",
                          status_changed_at=now, pending_since=now, next_dns_check_at=now, created_at=now,
                          updated_at=now))
    with transaction.atomic():
        insert_objects(objs)
    before = dns_server.queries.copy()
    start = time.perf_counter()
    totals = verification.check_due(as_of=now)
    seconds = time.perf_counter() - start
    queries = totals["queries"]
    asked = dns_server.queries - before  # the very (name, type) queries the sweep made, replayed raw

    async def raw():
        resolver = dns.make_resolver()
        gate = asyncio.Semaphore(dns.CONCURRENCY)
        names = list(asked.elements())

        async def one(name, rdtype):
            async with gate:
                try:
                    await resolver.resolve(name + ".", rdtype, raise_on_no_answer=False, search=False)
                except dns_resolver.NXDOMAIN:
                    pass

        await asyncio.gather(*(one(name, rdtype) for name, rdtype in names))

    raw_start = time.perf_counter()
    asyncio.run(raw())
    raw_seconds = time.perf_counter() - raw_start
    return {"domains": n, "verified": totals["verified"], "queries": queries, "seconds": round(seconds, 2),
            "per_second": round(n / seconds, 1), "ceiling": {"queries": queries, "seconds": round(raw_seconds, 2),
                                                              "domains_per_second": round(n / raw_seconds, 1)},
            "ratio": round(raw_seconds / seconds, 3)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", type=int, default=200, help="domains verified and issued (default 200)")
    parser.add_argument("--dns-n", type=int, default=10_000, help="pending domains for the DNS sweep (10000)")
    parser.add_argument("--concurrency", type=int, default=8, help="ACME orders at once (default 8)")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cobrador-bench-domains-"))
    dns_server = DnsServer().start()
    dns_server.set(TARGET, "A", "127.0.0.1")
    web_port = free_port()
    pebble = Pebble(work / "pebble", dns_address=dns_server.address, http_port=web_port)
    env = {"COBRADOR_DNS_NAMESERVERS": dns_server.address, "COBRADOR_CUSTOM_DOMAIN_TARGET": TARGET,
           "COBRADOR_ACME_DIRECTORY": pebble.directory_url, "COBRADOR_ACME_CA_BUNDLE": str(pebble.ca_bundle),
           "COBRADOR_ACME_CONCURRENCY": str(args.concurrency), "COBRADOR_CERT_DIR": str(work / "certs")}
    cpu_start = machine_cpu_seconds()
    try:
        with fresh_database(args.database, extra_env=env):
            from django.db import transaction

            from cobrador.core import clock
            from cobrador.organizations.services import create_organization

            clock.set(datetime.now(UTC))
            with transaction.atomic():
                organization = create_organization(name="Bench", mode="test", billing_email="b@example.test")
            _serve_django(web_port)
            issuance = measure_issuance(organization, args.n, args.concurrency, dns_server)
            raw_port = free_port()
            pebble.stop()  # the ceiling's pebble validates on its own port
            ceiling_pebble = Pebble(work / "pebble-raw", dns_address=dns_server.address, http_port=raw_port)
            try:
                ceiling = measure_raw_orders(args.n, args.concurrency, ceiling_pebble.directory_url,
                                             str(ceiling_pebble.ca_bundle), raw_port, dns_server)
            finally:
                ceiling_pebble.stop()
            dns_figures = measure_dns(organization, args.dns_n, dns_server)
    finally:
        pebble.stop()
        dns_server.stop()
    issuance_ratio = round(issuance["per_second"] / ceiling["per_second"], 3) if ceiling["per_second"] else 0.0
    cpu_end = machine_cpu_seconds()
    print_json({
        "benchmark": "domains",
        "database": args.database if args.database == "sqlite" else "postgresql",
        "issuance": {**issuance, "ceiling": ceiling, "ratio": issuance_ratio, "target": TARGET_RATIO},
        "dns_sweep": {**dns_figures, "target": TARGET_RATIO},
        "load_average": list(os.getloadavg()),
        "machine_cpu_seconds": round(cpu_end - cpu_start, 1) if cpu_start is not None and cpu_end else None,
        "cpus": os.cpu_count(),
        "meets_targets": bool(issuance["active"] == args.n and issuance_ratio >= TARGET_RATIO
                              and dns_figures["verified"] == args.dns_n and dns_figures["ratio"] >= TARGET_RATIO),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
