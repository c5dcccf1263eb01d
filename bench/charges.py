"""Charging benchmark: open invoices charged through the Pagar.me fake over HTTP, against a raw loop of
the same HTTP calls.

    python bench/charges.py                       # SQLite in a temporary directory
    python bench/charges.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench

1. Setup: --invoices open invoices (one account, card and invoice each), bulk-inserted; the Pagar.me
   fake (tests/fakes/pagarme.py) runs in its own process on loopback.
2. Ceiling: the same `POST /orders` requests the adapter sends (recorded through it, with their own
   idempotency keys), replayed by a raw loop with the same client and the same concurrency
   (COBRADOR_CHARGING_CONCURRENCY), no database. Run in two halves, before and after the achieved run.
3. Achieved: one `charge_open_invoices` task in a real `cobrador worker`: payments written in batches,
   gateway calls concurrent, answers recorded (payment.succeeded and invoice.paid events included).
   charges/s = invoices / (enqueue commit -> last payment recorded).

Prints one JSON object. A benchmark, not a timed test: the target is reported, never asserted.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import add_database_argument, fresh_database, print_json, start_worker, wait_until

REPO = Path(__file__).resolve().parent.parent
TARGET_RATIO = 0.3
SECRET_KEY = "sk_test_benchcharges00001"


# --- the fake in its own process ---------------------------------------------------------------------


def serve_fake() -> None:
    sys.path.insert(0, str(REPO))
    from tests.fakes.http_fake import fingerprint
    from tests.fakes.pagarme import FakePagarme

    class BenchFake(FakePagarme):
        def cached(self, key, request):
            # The fake prunes expired keys by scanning its whole cache on every request (fine for tests,
            # quadratic over 20,000 charges). Nothing expires within a run: look the key up only.
            with self.lock:
                cached = self.idempotency_cache.get(key)
            if cached is None:
                return None
            return cached.answer if cached.fingerprint == fingerprint(request) else False

    fake = BenchFake(secret_key=SECRET_KEY)
    fake.requests = _Discard()  # 20,000 requests: keep no log
    # The handler writes the headers and the body in two sends: without TCP_NODELAY, Nagle's algorithm
    # and the client's delayed ACK hold every answer ~40 ms.
    fake._server.RequestHandlerClass.disable_nagle_algorithm = True  # noqa: SLF001
    fake.start()
    print(fake.url, flush=True)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    stopping.wait()
    os._exit(0)


class _Discard(list):
    def append(self, item):
        pass


class FakeProcess:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, __file__, "fake"], stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        if not self.url:
            raise RuntimeError("the Pagar.me fake did not start")

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)


# --- data ------------------------------------------------------------------------------------------------


def setup(count: int):
    """An organization with a Pagar.me configuration (reaching the fake through COBRADOR_PAGARME_BASE_URL),
    and `count` open invoices ready to charge."""
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.customers.models import BillingAccount, PaymentMethod
    from cobrador.gateways.models import GatewayConfig
    from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence
    from cobrador.organizations.services import create_organization

    now = clock.now()
    with transaction.atomic():
        organization = create_organization(name="Bench", mode="test", billing_email="bench@example.test")
        config = GatewayConfig.objects.create(
            organization=organization, provider="pagarme", methods=["card"], credentials={"secret_key": SECRET_KEY},
            options={"timeout_seconds": 10}, created_at=now, updated_at=now)
        address = {"street": "Rua das Laranjeiras", "number": "1287", "neighborhood": "Vila Mariana",
                   "city": "São Paulo", "state": "SP", "zipcode": "04015020", "country": "BR"}
        accounts = BillingAccount.objects.bulk_create([
            BillingAccount(organization=organization, name=f"Customer {n}", email=f"c{n}@example.test",
                           document="52998224725", document_type="cpf", address=address, created_at=now,
                           updated_at=now) for n in range(count)], batch_size=1000)
        PaymentMethod.objects.bulk_create([
            PaymentMethod(organization=organization, account=a, type="card", card_brand="visa", card_last4="0010",
                          exp_month=12, exp_year=now.year + 3, gateway_token="card_bench0001", is_default=True,
                          created_at=now) for a in accounts], batch_size=1000)
        invoices = Invoice.objects.bulk_create([
            Invoice(organization=organization, account=a, number=n + 1, status="open", subtotal=4990 + n % 100,
                    total=4990 + n % 100, amount_due=4990 + n % 100, due_date=now.date(), created_at=now)
            for n, a in enumerate(accounts)], batch_size=1000)
        InvoiceLine.objects.bulk_create([
            InvoiceLine(invoice=i, description="Plano Pro (mensal)", unit_amount=i.total, amount=i.total)
            for i in invoices], batch_size=1000)
        InvoiceNumberSequence.objects.create(organization=organization, last_number=count)
    return organization, config


def recorded_requests(config, count: int) -> list:
    """The adapter's own `POST /orders` requests for `count` of the invoices, captured on the way out
    (each with a fresh idempotency key and reference, so replaying them makes new charges)."""
    import httpx

    from cobrador.core import clock
    from cobrador.customers.models import PaymentMethod
    from cobrador.gateways import pagarme
    from cobrador.invoicing.models import Invoice
    from cobrador.payments import charging, services

    captured = []

    def record(request: httpx.Request) -> httpx.Response:
        captured.append((request.method, str(request.url), dict(request.headers), request.content))
        return httpx.Response(200, json={"status": "paid", "charges": []})

    recorder = httpx.Client(transport=httpx.MockTransport(record))
    real_client, pagarme.http_client = pagarme.http_client, lambda timeout, transport=None: recorder
    try:
        gateway = pagarme.PagarmeGateway(config)
        invoices = list(Invoice.objects.filter(organization=config.organization).select_related("account")[:count])
        methods = {m.account_id: m for m in PaymentMethod.objects.filter(account__in=[i.account for i in invoices])}
        for invoice in invoices:
            payment = services.new_payment(invoice=invoice, payment_method=methods[invoice.account_id],
                                           config=config, source="invoice", attempt_number=0, now=clock.now())
            gateway.charge_card(charging.charge_request(payment))
    finally:
        pagarme.http_client = real_client
    return captured


def measure_ceiling(requests: list, concurrency: int) -> dict:
    from cobrador.gateways.pagarme import http_client

    client = http_client(10.0)
    pending = iter(requests)
    lock = threading.Lock()
    failures = []

    def loop():
        while True:
            with lock:
                request = next(pending, None)
            if request is None:
                return
            method, url, headers, content = request
            response = client.request(method, url, headers=headers, content=content)
            if response.status_code != 200 or response.json().get("status") != "paid":
                failures.append(response.status_code)

    started = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    return {"calls": len(requests), "seconds": seconds, "failures": len(failures)}


def measure_achieved(organization, count: int) -> dict:
    from django.db import transaction
    from django.db.models import Count

    from cobrador.payments import tasks
    from cobrador.payments.models import Payment

    payments = Payment.objects.filter(organization=organization)
    started = time.monotonic()
    with transaction.atomic():
        tasks.enqueue_charging(organization_id=organization.pk)
    wait_until(lambda: payments.exclude(status="processing").count() >= count, timeout=1800, interval=0.25,
               what=f"{count} charges recorded")
    seconds = time.monotonic() - started
    return {"charges": count, "seconds": round(seconds, 3), "charges_per_second": round(count / seconds, 1),
            "by_status": dict(payments.values_list("status").annotate(n=Count("pk")).order_by())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", "--invoices", dest="invoices", type=int, default=10_000,
                        help="open invoices to charge (default 10000)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="concurrent gateway calls in the worker and in the raw loop (default: the setting)")
    args = parser.parse_args()

    fake = FakeProcess()
    # The fake is an installation setting (never a gateway option), on loopback past the outbound guard.
    extra_env = {"COBRADOR_PAGARME_BASE_URL": fake.url, "COBRADOR_PROVIDER_ALLOW_PRIVATE": "1"}
    if args.concurrency:
        extra_env["COBRADOR_CHARGING_CONCURRENCY"] = str(args.concurrency)
    try:
        with fresh_database(args.database, extra_env=extra_env) as bench_db:
            from cobrador.invoicing.models import Invoice
            from cobrador.payments import charging

            concurrency = charging.CONCURRENCY
            setup_started = time.monotonic()
            organization, config = setup(args.invoices)
            requests = recorded_requests(config, args.invoices)
            setup_seconds = time.monotonic() - setup_started
            half = len(requests) // 2
            ceilings = [measure_ceiling(requests[:half], concurrency)]

            worker = start_worker(bench_db, "--concurrency", "1")
            achieved = measure_achieved(organization, args.invoices)
            worker.check_alive()
            worker_rss = worker.sample_rss()
            worker.stop()
            ceilings.append(measure_ceiling(requests[half:], concurrency))

            calls = sum(c["calls"] for c in ceilings)
            ceiling_rate = calls / sum(c["seconds"] for c in ceilings)
            ratio = achieved["charges_per_second"] / ceiling_rate
            paid = Invoice.objects.filter(organization=organization, status="paid").count()
            print_json({
                "benchmark": "charges",
                "database": bench_db.vendor,
                "invoices": args.invoices,
                "concurrency": concurrency,
                "setup_seconds": round(setup_seconds, 1),
                "ceiling": {"calls_per_second": round(ceiling_rate, 1), "calls": calls,
                            "runs_per_second": [round(c["calls"] / c["seconds"], 1) for c in ceilings],
                            "failures": sum(c["failures"] for c in ceilings)},
                "achieved": {**achieved, "invoices_paid": paid, "worker_peak_rss_mb": round(worker_rss / 2**20, 1)},
                "achieved_over_ceiling": round(ratio, 3),
                "target": {"ratio": TARGET_RATIO},
                "meets_targets": ratio >= TARGET_RATIO and paid == args.invoices,
            })
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["fake"]:
        serve_fake()
    sys.exit(main())
