"""NFS-e benchmark: N paid invoices issued through the NFe.io fake over HTTP, then their N callbacks.

    python bench/nfse.py --n 10000                  # SQLite in a temporary directory
    python bench/nfse.py --n 10000 --database postgres://postgres@127.0.0.1:5432/cobrador_bench_nfse

The NFe.io fake (tests/fakes/nfeio.py) runs in its own process. Every invoice has a `pending` note (as
the on_payment sink writes it in the payment's transaction).

1. Ceiling: a raw loop of the same HTTP calls (the same issue bodies, the same NFe.io client, the same
   concurrency: payments.charging's call pool), with no database, to a second company of the fake.
2. Issuance: issuing.issue_pending over every pending note (claim a batch, the calls concurrently,
   record the answers; the calls of one batch overlap the recording of the one before). First N/10
   notes, then the rest: the process's peak RSS after each says whether memory grows with N.
3. Callbacks: the fake settles every note (Issued) and POSTs its signed `service_invoice` webhook to a
   real `cobrador web` (--concurrency connections); the callbacks inbox then processes them in this
   process. Every note must end `issued` with one nfe.issued event, and the fake must hold N notes.

Prints one JSON object. Targets: issuance >= 0.5 of the ceiling's rate; peak memory flat in N (the peak
RSS growth while issuing the last 90% of the notes is at most that of the first 10% plus 32 MB).
"""

import argparse
import json
import subprocess
import sys
import time

from _common import REPO, add_database_argument, fresh_database, own_peak_rss_bytes, print_json

TARGET_RATIO = 0.5
API_KEY = "bench-nfeio-key-0001"
COMPANY, CEILING_COMPANY = "benchcompany", "ceilingcompany"
WEBHOOK_SECRET = "bench-nfeio-webhook-secret-0123456789"

FAKE_RUNNER = """
import json, sys, time
from tests.fakes.nfeio import FakeNfeio
fake = FakeNfeio(api_key=%r, company_id=%r, webhook_max_retries=0)
fake.companies[%r] = "Development"
fake.start()
print(fake.url, flush=True)
for line in sys.stdin:
    command = json.loads(line)
    if command["op"] == "hook":
        fake.add_webhook(command["uri"], command["secret"])
        answer = {}
    elif command["op"] == "advance":
        answer = {"moved": fake.advance(deliver=False)}
        with fake.lock:  # the ceiling's notes are not the organization's: no webhooks for them
            kept = [(t, d) for t, d in fake.pending_events if not str(d.get("externalId", "")).startswith("ceiling-")]
            fake.pending_events.clear()
            fake.pending_events.extend(kept)
    elif command["op"] == "deliver":
        started = time.monotonic()
        statuses = fake.deliver_pending(concurrency=command["concurrency"])
        answer = {"seconds": time.monotonic() - started, "sent": len(statuses),
                  "ok": sum(1 for s in statuses if s is not None and 200 <= s < 300)}
    elif command["op"] == "count":
        with fake.lock:
            external = [n["externalId"] for n in fake.notes.values() if n["_company"] == %r]
        answer = {"notes": len(external), "distinct_external_ids": len(set(external))}
    print(json.dumps(answer), flush=True)
""" % (API_KEY, COMPANY, CEILING_COMPANY, COMPANY)  # noqa: UP031 - the script is full of braces


def reset_peak_rss() -> None:
    """Linux: restart this process's peak RSS (VmHWM) count from its current RSS."""
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def peak_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return own_peak_rss_bytes()


def current_rss() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Fake:
    def __init__(self, env):
        self.process = subprocess.Popen([sys.executable, "-c", FAKE_RUNNER], env={**env, "PYTHONPATH": str(REPO)},
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO)
        self.url = self.process.stdout.readline().strip()
        if not self.url.startswith("http"):
            raise RuntimeError("the NFe.io fake did not start")

    def ask(self, **command) -> dict:
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stop(self):
        self.process.stdin.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def setup(n: int):
    """An organization with fiscal settings, accounts with fiscal data, N paid invoices and their notes."""
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.core.bulk import insert_rows
    from cobrador.customers.models import BillingAccount
    from cobrador.invoicing.models import Invoice, InvoiceLine
    from cobrador.nfe import services
    from cobrador.organizations.services import create_organization

    now = clock.now()
    with transaction.atomic():
        organization = create_organization(name="Bench", mode="test", billing_email="bench@example.test")
        config = services.update_fiscal_settings(organization=organization, changes={
            "policy": "on_payment", "nfeio_company_id": COMPANY, "nfeio_api_key": API_KEY,
            "nfeio_webhook_secret": WEBHOOK_SECRET, "city_service_code": "2690"})
        accounts = [BillingAccount(
            organization=organization, name=f"Cliente {i}", email=f"c{i}@example.test", document="52998224725",
            document_type="cpf", address={"street": "Rua A", "number": "1", "complement": "", "neighborhood": "Centro",
                                          "city": "São Paulo", "state": "SP", "zipcode": "04015020", "country": "BR",
                                          "city_code": "3550308"}, created_at=now, updated_at=now)
            for i in range(100)]
        BillingAccount.objects.bulk_create(accounts)
    for start in range(0, n, 1000):
        size = min(1000, n - start)
        with transaction.atomic():
            rows = [(f"in_bench{start + i:08d}", organization.pk, accounts[(start + i) % 100].pk, start + i + 1, "paid",
                     "BRL", 4990, 0, 0, 4990, 4990, 0, now.date(), now, now) for i in range(size)]
            ids = insert_rows(Invoice, ["public_id", "organization", "account", "number", "status", "currency",
                                        "subtotal", "discount", "credit_applied", "total", "amount_paid", "amount_due",
                                        "due_date", "created_at", "paid_at"], rows, returning_ids=True)
            insert_rows(InvoiceLine, ["invoice", "description", "quantity", "unit_amount", "amount"],
                        [(pk, "Plano Pro", 1, 4990, 4990) for pk in ids])
            invoices = list(Invoice.objects.filter(pk__in=ids).select_related("organization", "account")
                            .prefetch_related("lines"))
            services.create_notes(invoices=invoices, configs={organization.pk: config})
    return organization, config


def ceiling(n: int, organization, config) -> float:
    """The same issue calls with the same client and concurrency, no database: notes/s."""
    from cobrador.nfe import services
    from cobrador.nfe.models import ServiceInvoice
    from cobrador.payments.charging import call_concurrently

    sample = list(ServiceInvoice.objects.filter(organization=organization).select_related("account")[:100])
    bodies = []
    for i in range(n):
        body = services.issue_body(sample[i % len(sample)], config, sample[i % len(sample)].account)
        bodies.append({**body, "externalId": f"ceiling-{i}"})
    client = services.client_for(config)
    started = time.monotonic()
    for position in range(0, n, 200):  # the same batches as issuing, without the database
        call_concurrently(lambda body: client.issue(company_id=CEILING_COMPANY, body=body),
                          bodies[position:position + 200])
    return n / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", type=int, default=10000, help="paid invoices to issue (10000)")
    parser.add_argument("--concurrency", type=int, default=16, help="webhook connections to cobrador web (16)")
    args = parser.parse_args()

    with fresh_database(args.database) as bench_db:
        fake = Fake(bench_db.env)
        bench_db.env["COBRADOR_NFEIO_BASE_URL"] = fake.url
        bench_db.env["COBRADOR_PROVIDER_ALLOW_PRIVATE"] = "1"  # the fake is on loopback, past the outbound guard
        from django.conf import settings

        settings.NFEIO_BASE_URL, settings.PROVIDER_ALLOW_PRIVATE = fake.url, True
        from _common import analyze_tables
        from callbacks import Web  # a real `cobrador web` against the bench database

        from cobrador.callbacks import processing as callback_processing
        from cobrador.core import clock
        from cobrador.events.models import Event
        from cobrador.nfe import issuing
        from cobrador.nfe.models import ServiceInvoice

        web = None
        try:
            started = time.monotonic()
            organization, config = setup(args.n)
            analyze_tables()
            setup_seconds = time.monotonic() - started
            ceiling_rate = ceiling(args.n, organization, config)

            rss_before = current_rss()
            reset_peak_rss()
            first = max(1, args.n // 10)
            started = time.monotonic()
            counts = issuing.issue_pending(as_of=clock.now(), max_batches=max(1, first // issuing.BATCH_SIZE))
            rss_first = peak_rss()
            counts_rest = issuing.issue_pending(as_of=clock.now())
            issue_seconds = time.monotonic() - started
            rss_all = peak_rss()
            for key, value in counts_rest.items():
                counts[key] = counts.get(key, 0) + value
            processing = ServiceInvoice.objects.filter(organization=organization, status="processing").count()

            web = Web(bench_db, 2)
            web.wait_ready()
            token = config.callback_token
            fake.ask(op="hook", uri=f"http://127.0.0.1:{web.port}/v1/callbacks/nfeio/{token}", secret=WEBHOOK_SECRET)
            fake.ask(op="advance")
            delivery = fake.ask(op="deliver", concurrency=args.concurrency)
            started = time.monotonic()
            processed = {}
            while True:
                more = callback_processing.process_received(max_batches=50)
                for key, value in more.items():
                    processed[key] = processed.get(key, 0) + value
                if not more:
                    break
            process_seconds = time.monotonic() - started
            issued = ServiceInvoice.objects.filter(organization=organization, status="issued").count()
            events = Event.objects.filter(organization=organization, type="nfe.issued").count()
            at_fake = fake.ask(op="count")
        finally:
            if web is not None:
                web.stop()
            fake.stop()

    issue_rate = args.n / issue_seconds
    ratio = issue_rate / ceiling_rate
    growth_first, growth_rest = rss_first - rss_before, rss_all - rss_first
    memory_flat = growth_rest <= growth_first + 32 * 1024 * 1024
    correct = (processing == args.n and issued == args.n and events == args.n and delivery["ok"] == args.n
               and at_fake == {"notes": args.n, "distinct_external_ids": args.n})
    print_json({
        "benchmark": "nfse",
        "database": bench_db.vendor,
        "n": args.n,
        "setup_seconds": round(setup_seconds, 2),
        "ceiling": {"what": "raw loop of the same NFe.io issue calls, same client and concurrency, no database",
                    "notes_per_second": round(ceiling_rate, 1)},
        "issuance": {"notes_per_second": round(issue_rate, 1), "seconds": round(issue_seconds, 2),
                     "answers": counts},
        "ratio": round(ratio, 3),
        "memory": {"what": "peak RSS (VmHWM, reset before issuance) over the RSS before it",
                   "peak_growth_first_10pct_mb": round(growth_first / 2**20, 1),
                   "peak_growth_last_90pct_mb": round(growth_rest / 2**20, 1), "flat": memory_flat},
        "callbacks": {"delivered_ok": delivery["ok"],
                      "intake_per_second": round(delivery["sent"] / delivery["seconds"], 1),
                      "processed": processed, "processing_per_second": round(args.n / process_seconds, 1)},
        "result": {"issued": issued, "nfe_issued_events": events, "notes_at_nfeio": at_fake},
        "targets": {"ratio": TARGET_RATIO, "memory_flat": True},
        "meets_targets": bool(correct and ratio >= TARGET_RATIO and memory_flat),
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
