"""Gateway callback benchmark: signed Kobana callbacks POSTed to `cobrador web` at increasing rates.

    python bench/callbacks.py                       # SQLite in a temporary directory
    python bench/callbacks.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench

1. Ceiling: a raw loop committing the same rows (GatewayCallback, the same headers and body, one
   transaction each, as the view does) with the same concurrency as the load: no HTTP, no Django view,
   no signature check.
2. Steps: an open-loop load (each request has its scheduled send time; latency is measured from it, so
   queueing counts) of `bank_billet.paid` callbacks, each paying a distinct pending boleto, signed with
   X-Kobana-Signature, over --concurrency keep-alive connections to a real `cobrador web` (granian). The
   ceiling is intake only, and so is this by default: the `cobrador worker` that processes the stored
   callbacks starts after the load (with --worker-during-load it runs meanwhile, on the same two cores,
   which measures intake and processing sharing one machine). The rate starts at --start-fraction of the
   ceiling and grows by --growth until a step fails: any non-2xx, less than 95% of the offered rate
   achieved, or p99 above --saturation-ms. Sustained = the highest rate of a passing step.
3. Half rate: after a few seconds' pause, the same load at half the sustained rate; p99 latency and
   non-2xx are reported.
4. Every stored callback must then be processed by the worker (and each boleto paid once).

Prints one JSON object. A benchmark, not a timed test: the targets are reported, never asserted.
"""

import argparse
import asyncio
import gc
import hashlib
import hmac
import json
import socket
import subprocess
import sys
import threading
import time
import uuid

from _common import add_database_argument, fresh_database, percentile, print_json, start_worker, wait_until

TARGET_SUSTAINED_RATIO = 0.25
TARGET_P99_MS = 50.0
SETTLE_SECONDS = 5.0
WEBHOOK_SECRET = "bench-kobana-webhook-secret"


# --- data ------------------------------------------------------------------------------------------------


def setup():
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.gateways.models import GatewayConfig
    from cobrador.organizations.services import create_organization

    now = clock.now()
    with transaction.atomic():
        organization = create_organization(name="Bench", mode="test", billing_email="bench@example.test")
        config = GatewayConfig.objects.create(
            organization=organization, provider="kobana", methods=["bank_slip", "pix"],
            credentials={"api_token": "unused", "webhook_secret": WEBHOOK_SECRET, "pix_account_uid": "unused"},
            created_at=now, updated_at=now)
    return organization, config


_next_number = [0]


def pending_boletos(organization, config, count: int) -> list[tuple[int, str]]:
    """`count` open invoices, each with a pending Kobana boleto: [(billet id, payment public id)]."""
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.customers.models import BillingAccount
    from cobrador.invoicing.models import Invoice
    from cobrador.payments.models import Payment

    now = clock.now()
    first = _next_number[0]
    _next_number[0] += count
    with transaction.atomic():
        accounts = BillingAccount.objects.bulk_create([
            BillingAccount(organization=organization, name=f"Customer {n}", email=f"c{n}@example.test",
                           document="52998224725", document_type="cpf", created_at=now, updated_at=now)
            for n in range(first, first + count)], batch_size=1000)
        invoices = Invoice.objects.bulk_create([
            Invoice(organization=organization, account=a, number=first + i + 1, status="open", subtotal=34990,
                    total=34990, amount_due=34990, due_date=now.date(), created_at=now)
            for i, a in enumerate(accounts)], batch_size=1000)
        payments = [Payment(organization=organization, invoice=i, account_id=i.account_id, method="bank_slip",
                            provider="kobana", gateway=config, provider_charge_id=str(84_000_000 + first + n),
                            amount=34990, status="pending", source="invoice", created_at=now, updated_at=now)
                    for n, i in enumerate(invoices)]
        for payment in payments:
            payment.idempotency_key = payment.public_id
        Payment.objects.bulk_create(payments, batch_size=1000)
    return [(int(p.provider_charge_id), p.public_id) for p in payments]


def callback(billet_id: int, reference: str) -> tuple[dict[str, str], bytes]:
    """A Kobana `bank_billet.paid` delivery, as Kobana sends it (shared/reference/providers.md §2.5)."""
    body = json.dumps({
        "event_code": "bank_billet.paid",
        "webhook": {"id": 1, "url": "https://example.test/hooks", "first_try": "2026-06-16 09:18:18 -0300"},
        "object": {"id": billet_id, "uid": uuid.uuid4().hex, "status": "paid", "amount": 349.9,
                   "paid_amount": 349.9, "paid_at": "2026-06-16", "expire_at": "2026-06-30",
                   "external_id": reference, "customer_cnpj_cpf": "529.982.247-25",
                   "line": "34191.09008 63571.277308 71444.640008 5 96610000034990",
                   "barcode": "34195966100000349901090063571277307144464000"},
        "changes": {"status": ["opened", "paid"], "paid_at": [None, "2026-06-16"], "paid_amount_cents": [None, 34990]},
    }, separators=(",", ":")).encode()
    signature = hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"content-type": "application/json", "user-agent": "Kobana-Robot (sandbox)",
               "x-kobana-event": "bank_billet.paid", "x-kobana-environment": "sandbox",
               "x-kobana-delivery-id": str(uuid.uuid4()), "x-kobana-signature": f"sha256={signature}"}
    return headers, body


def raw_request(path: str, port: int, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"host: 127.0.0.1:{port}", f"content-length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


# --- ceiling: commit the same rows, no HTTP --------------------------------------------------------------


def measure_ceiling(organization, config, deliveries: list[tuple[dict, bytes]], concurrency: int) -> dict:
    from django.db import connection, transaction

    from cobrador.callbacks.models import GatewayCallback
    from cobrador.core import clock

    pending = iter(deliveries)
    lock = threading.Lock()

    def loop():
        try:
            while True:
                with lock:
                    delivery = next(pending, None)
                if delivery is None:
                    return
                headers, body = delivery
                with transaction.atomic():
                    GatewayCallback.objects.create(
                        organization_id=organization.pk, gateway=config, provider="kobana",
                        event_id=headers["x-kobana-delivery-id"], event_type="bank_billet.paid", headers=headers,
                        body=body, status="received", received_at=clock.now())
        finally:
            connection.close()

    started = time.monotonic()
    threads = [threading.Thread(target=loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    GatewayCallback.objects.filter(event_type="bank_billet.paid", status="received").delete()
    return {"rows": len(deliveries), "seconds": seconds}


# --- the open-loop load ----------------------------------------------------------------------------------


async def _load(port: int, requests: list[bytes], rate: float, concurrency: int) -> list[tuple[float, int]]:
    """Send `requests` at `rate`/s over `concurrency` keep-alive connections; [(latency s, status)] with
    latency from each request's scheduled time (so time spent waiting for a free connection counts)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    results: list[tuple[float, int]] = []
    start = loop.time() + 0.05

    async def produce():
        for i, request in enumerate(requests):
            delay = start + i / rate - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((start + i / rate, request))
        for _ in range(concurrency):
            queue.put_nowait(None)

    async def connection_worker():
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.transport.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            scheduled, request = item
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = int(head.split(b" ", 2)[1])
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                if length:
                    await reader.readexactly(length)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = 0
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            results.append((loop.time() - scheduled, status))

    await asyncio.gather(produce(), *(connection_worker() for _ in range(concurrency)))
    return results


def settle(vendor: str) -> None:
    """Steady state for the half-rate step, not the recovery from the overloaded step before it: a pause,
    and on PostgreSQL the checkpoint that the overload's WAL would otherwise force during the step."""
    if vendor == "postgresql":
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("CHECKPOINT")
    time.sleep(SETTLE_SECONDS)


def run_step(port: int, requests: list[bytes], rate: float, concurrency: int) -> dict:
    # The load generator must not pause mid-step to collect its own garbage: a pause delays the sends,
    # and latency counts from each request's scheduled time.
    gc.collect()
    gc.disable()
    try:
        started = time.monotonic()
        results = asyncio.run(_load(port, requests, rate, concurrency))
        seconds = time.monotonic() - started
    finally:
        gc.enable()
    latencies = [latency for latency, _ in results]
    non_2xx = sum(1 for _, status in results if not 200 <= status < 300)
    return {"offered_per_second": round(rate, 1), "requests": len(results),
            "achieved_per_second": round(len(results) / seconds, 1),
            "p50_ms": round(percentile(latencies, 50) * 1000, 1), "p99_ms": round(percentile(latencies, 99) * 1000, 1),
            "max_ms": round(max(latencies) * 1000, 1), "non_2xx": non_2xx}


# --- cobrador web ----------------------------------------------------------------------------------------


class Web:
    """A real `cobrador web` (granian) against the bench database."""

    def __init__(self, bench_db, workers: int):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.log_path = bench_db.data_dir / "web.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cobrador.cli", "web", "--port", str(self.port), "--workers", str(workers)],
            env=bench_db.env, stdout=self._log, stderr=subprocess.STDOUT, cwd=bench_db.data_dir)

    def wait_ready(self, timeout: float = 60) -> None:
        import httpx

        def answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"cobrador web exited; log:\n{self.log_path.read_text()[-3000:]}")
            try:
                return httpx.get(f"http://127.0.0.1:{self.port}/v1/openapi.json", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(answers, timeout=timeout, interval=0.2, what="cobrador web to answer")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        self._log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--concurrency", type=int, default=16, help="connections / committing threads (16)")
    parser.add_argument("--step-seconds", type=float, default=8.0, help="length of each rate step (8)")
    parser.add_argument("--start-fraction", type=float, default=0.05,
                        help="first rate, as a share of the ceiling (0.05)")
    parser.add_argument("--growth", type=float, default=1.3, help="rate multiplier between steps (1.3)")
    parser.add_argument("--saturation-ms", type=float, default=1000.0, help="p99 that fails a step (1000)")
    parser.add_argument("--ceiling-rows", type=int, default=4000, help="rows per ceiling half (4000)")
    parser.add_argument("--web-workers", type=int, default=2, help="`cobrador web` processes (2)")
    parser.add_argument("--worker-during-load", action="store_true",
                        help="run the processing worker during the load instead of after it")
    args = parser.parse_args()

    with fresh_database(args.database) as bench_db:
        from django.db.models import Count

        from cobrador.callbacks.models import GatewayCallback
        from cobrador.invoicing.models import Invoice

        organization, config = setup()
        path = f"/v1/callbacks/kobana/{config.callback_token}"
        ceiling_deliveries = [callback(84_999_000_000 + n, f"pay_none{n}") for n in range(2 * args.ceiling_rows)]
        ceilings = [measure_ceiling(organization, config, ceiling_deliveries[:args.ceiling_rows], args.concurrency)]

        web = Web(bench_db, args.web_workers)
        worker = start_worker(bench_db, "--concurrency", "1") if args.worker_during_load else None
        try:
            web.wait_ready()
            # Warm up every web worker thread (the first requests of a thread load what Django loads
            # lazily): not measured.
            warmup = [callback(b, r) for b, r in pending_boletos(organization, config, 20 * args.concurrency)]
            run_step(web.port, [raw_request(path, web.port, h, b) for h, b in warmup], 50.0, args.concurrency)
            paid_boletos = len(warmup)
            ceiling_rate = args.ceiling_rows / ceilings[0]["seconds"]
            steps, sustained, rate = [], None, ceiling_rate * args.start_fraction
            while True:
                count = max(50, int(rate * args.step_seconds))
                deliveries = [callback(b, r) for b, r in pending_boletos(organization, config, count)]
                requests = [raw_request(path, web.port, h, b) for h, b in deliveries]
                step = run_step(web.port, requests, rate, args.concurrency)
                if worker:
                    worker.check_alive()
                paid_boletos += count
                step["passed"] = (step["non_2xx"] == 0 and step["achieved_per_second"] >= 0.95 * rate
                                  and step["p99_ms"] <= args.saturation_ms)
                steps.append(step)
                if not step["passed"]:
                    break
                sustained = step["achieved_per_second"]
                rate *= args.growth
            half = None
            if sustained:
                settle(bench_db.vendor)
                count = max(50, int(sustained / 2 * args.step_seconds * 2))
                deliveries = [callback(b, r) for b, r in pending_boletos(organization, config, count)]
                half = run_step(web.port, [raw_request(path, web.port, h, b) for h, b in deliveries],
                                sustained / 2, args.concurrency)
                paid_boletos += count
            # Everything stored is processed by the worker; each boleto's invoice paid once.
            drain_started = time.monotonic()
            if worker is None:
                worker = start_worker(bench_db, "--concurrency", "1")
            wait_until(lambda: not GatewayCallback.objects.filter(status__in=["received", "processing"]).exists(),
                       timeout=600, interval=0.5, what="the worker to process every callback")
            drain_seconds = time.monotonic() - drain_started
            worker.check_alive()
        finally:
            web.stop()
            if worker:
                worker.stop()
        ceilings.append(measure_ceiling(organization, config, ceiling_deliveries[args.ceiling_rows:],
                                        args.concurrency))
        ceiling_rate = sum(c["rows"] for c in ceilings) / sum(c["seconds"] for c in ceilings)
        statuses = dict(GatewayCallback.objects.values_list("status").annotate(n=Count("pk")).order_by())
        paid = Invoice.objects.filter(organization=organization, status="paid").count()
        ratio = (sustained or 0) / ceiling_rate
        print_json({
            "benchmark": "callbacks",
            "database": bench_db.vendor,
            "concurrency": args.concurrency,
            "worker_during_load": args.worker_during_load,
            "ceiling": {"rows_per_second": round(ceiling_rate, 1),
                        "runs_per_second": [round(c["rows"] / c["seconds"], 1) for c in ceilings]},
            "steps": steps,
            "sustained_per_second": sustained,
            "sustained_over_ceiling": round(ratio, 3),
            "half_rate": half,
            "processing": {"callbacks": statuses, "invoices_paid": paid, "boletos": paid_boletos,
                           "seconds_to_process_after_load": round(drain_seconds, 1)},
            "targets": {"sustained_ratio": TARGET_SUSTAINED_RATIO, "p99_ms_at_half_rate": TARGET_P99_MS},
            "meets_targets": bool(half) and ratio >= TARGET_SUSTAINED_RATIO and half["p99_ms"] <= TARGET_P99_MS
            and half["non_2xx"] == 0 and paid == paid_boletos,
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
