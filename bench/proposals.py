"""Proposals benchmark: the two proposal sweeps against the bulk ceiling of the rows they write, and the
hosted invoice page under load against the same server's trivial view.

    python bench/proposals.py                       # SQLite in a temporary directory
    python bench/proposals.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench

Setup (not measured): N proposals (default 100,000) of one line each, all sent; N/5 past their last
valid day (due to expire), N/5 one day from it (due the 1-day reminder), the rest valid for 30 more days.

1. proposal-expiration as of the next local morning: expires N/5, with their events and the seller's
   notices. Its ceiling: the same rows written with nothing of the sweep's logic in the way: the
   proposals' update and the same events and notices (the sweep's own rows, cloned) inserted at once,
   COPY on PostgreSQL (core.bulk), one bulk transaction on SQLite. Then a rerun, which must write nothing.
2. proposal-reminder the same way (reminder rows, events, notices and the page links in the e-mails).
3. The hosted invoice page (with its PIX QR code) on `cobrador web` (granian, 2 workers), from
   a loopback client with keep-alive connections: the sustained rate of the page and of /healthz (the
   ceiling: the same server's trivial view); then the page at half its sustained rate, paced, for p99.

Prints one JSON object. Targets: each sweep <= 10x its ceiling (aim 5x), reruns write nothing, the page
>= 0.3 of the trivial view's rate, p99 <= 50 ms at half its rate. Reported, never asserted.
"""

import argparse
import gc
import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime, timedelta

from _common import (
    add_database_argument,
    analyze_tables,
    fresh_database,
    machine_cpu_seconds,
    own_peak_rss_bytes,
    percentile,
    print_json,
    wait_until,
)

SETUP_AT = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)
SWEEP_AT = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)  # 09:00 on the 20th in Sao Paulo
TODAY = date(2026, 3, 20)
TARGET_SWEEP_RATIO = 10.0
TARGET_PAGE_RATIO = 0.3
TARGET_P99_MS = 50.0


def setup(organization, n: int, plan) -> None:
    """N sent proposals with one line each, written in bulk (the services would take minutes)."""
    from django.db import transaction

    from cobrador.core.bulk import insert_rows
    from cobrador.core.ids import new_public_id
    from cobrador.proposals.models import Proposal, ProposalLine

    fifth = n // 5
    fields = ["public_id", "organization", "number", "prospect_name", "prospect_email", "prospect_locale",
              "currency", "subtotal", "discount", "total", "expires_on", "message", "status", "sent_at",
              "view_count", "metadata", "created_at", "updated_at", "prospect_document", "decline_reason"]
    for start in range(0, n, 10_000):
        rows = []
        for i in range(start, min(n, start + 10_000)):
            expires_on = TODAY - timedelta(days=1) if i < fifth else (
                TODAY + timedelta(days=1) if i < 2 * fifth else TODAY + timedelta(days=30))
            rows.append((new_public_id("prop"), organization.pk, i + 1, f"Prospect {i}", f"p{i}@example.com", "pt-BR",
                         "BRL", plan.amount, 0, plan.amount, expires_on, "", "sent", SETUP_AT, 0, {}, SETUP_AT,
                         SETUP_AT, "", ""))
        with transaction.atomic():
            ids = insert_rows(Proposal, fields, rows, returning_ids=True)
            insert_rows(ProposalLine, ["proposal", "position", "plan", "quantity", "commitment_months", "unit_amount",
                                       "amount", "discount"],
                        [(pk, 0, plan.pk, 1, 0, plan.amount, plan.amount, 0) for pk in ids])


def _written_since(marks: dict) -> dict:
    """The rows each table got since `marks` (its max pk before the sweep)."""
    return {model: list(model.objects.filter(pk__gt=mark).order_by("pk")) for model, mark in marks.items()}


def _marks(models) -> dict:
    from django.db.models import Max

    return {model: model.objects.aggregate(m=Max("pk"))["m"] or 0 for model in models}


def _clone(obj):
    """A copy of one row the sweep wrote, with fresh unique values, for the ceiling to insert."""
    from cobrador.core.bulk import build
    from cobrador.core.ids import new_public_id

    model = type(obj)
    values = {f.name: getattr(obj, f.name) for f in model._meta.concrete_fields if not f.primary_key}
    if "public_id" in values:
        values["public_id"] = new_public_id(values["public_id"].split("_", 1)[0])
    if "dedupe_key" in values:
        values["dedupe_key"] = values["dedupe_key"] + ":ceiling"
    if "token_hash" in values:
        values["token_hash"] = os.urandom(32).hex()
    if "days_before" in values:
        values["days_before"] = values["days_before"] + 100
    return build(model, **values)


def measure_ceiling(written: dict, proposals_to_update: list, fields: list[str], values: dict) -> dict:
    """The sweep's rows inserted (and its proposal updates written) at once, in one transaction."""
    from django.db import transaction

    from cobrador.core.bulk import insert_objects, update_rows

    clones = {model: [_clone(obj) for obj in rows] for model, rows in written.items()}
    for proposal in proposals_to_update:
        for name, value in values.items():
            setattr(proposal, name, value)
    gc.collect()
    started, cpu_started = time.perf_counter(), machine_cpu_seconds()
    with transaction.atomic():
        update_rows(proposals_to_update, fields)
        for rows in clones.values():
            insert_objects(rows)
    seconds = time.perf_counter() - started
    cpu = machine_cpu_seconds()
    rows = len(proposals_to_update) + sum(len(r) for r in clones.values())
    return {"seconds": round(seconds, 3), "rows": rows, "machine_cpu_seconds": round(cpu - cpu_started, 2)
            if cpu is not None else None}


def run_sweep(name: str, models) -> tuple[dict, dict]:
    from cobrador.core import clock
    from cobrador.jobs.runner import run_job

    marks = _marks(models)
    clock.set(SWEEP_AT)
    gc.collect()
    started, cpu_started = time.perf_counter(), machine_cpu_seconds()
    run = run_job(name, as_of=SWEEP_AT)
    seconds = time.perf_counter() - started
    cpu = machine_cpu_seconds()
    written = _written_since(marks)
    rerun_marks = _marks(models)
    rerun = run_job(name, as_of=SWEEP_AT + timedelta(minutes=5))
    rerun_written = sum(len(rows) for rows in _written_since(rerun_marks).values())
    return {"seconds": round(seconds, 3), "status": run.status, "counts": run.counts,
            "rows_inserted": {m.__name__: len(r) for m, r in written.items()},
            "machine_cpu_seconds": round(cpu - cpu_started, 2) if cpu is not None else None,
            "rerun": {"counts": rerun.counts, "rows_inserted": rerun_written,
                      "writes_nothing": rerun_written == 0 and not rerun.counts}}, written


# --- the hosted invoice page under load ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(connection: http.client.HTTPConnection, path: str) -> int:
    connection.request("GET", path)
    response = connection.getresponse()
    response.read()
    return response.status


def sustained_rate(port: int, path: str, seconds: float, clients: int) -> dict:
    """Closed loop: `clients` keep-alive connections each requesting as fast as answers come back."""
    stop = time.perf_counter() + seconds
    counts, errors = [0] * clients, [0] * clients

    def loop(i: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.perf_counter() < stop:
            if _get(connection, path) == 200:
                counts[i] += 1
            else:
                errors[i] += 1
        connection.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"requests_per_second": round(sum(counts) / elapsed, 1), "errors": sum(errors)}


def paced_latency(port: int, path: str, rate: float, seconds: float, clients: int) -> dict:
    """Open loop: requests sent on a fixed schedule at `rate`/s over `clients` connections; latency from
    each request's scheduled time (a late start counts against the server)."""
    total = int(rate * seconds)
    interval = 1 / rate
    latencies, errors = [], []
    lock = threading.Lock()
    next_index = [0]
    start = time.perf_counter() + 0.2

    def loop() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                index = next_index[0]
                next_index[0] += 1
            if index >= total:
                break
            due = start + index * interval
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            status = _get(connection, path)
            with lock:
                latencies.append((time.perf_counter() - due) * 1000)
                if status != 200:
                    errors.append(status)
        connection.close()

    threads = [threading.Thread(target=loop) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"rate": round(rate, 1), "requests": len(latencies), "errors": len(errors),
            "p50_ms": round(percentile(latencies, 50), 2), "p99_ms": round(percentile(latencies, 99), 2)}


def invoice_page_path(organization) -> str:
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.customers.services import create_billing_account
    from cobrador.invoicing.models import Invoice, InvoiceLine
    from cobrador.pages import links
    from cobrador.payments.models import Payment

    now = clock.now()
    with transaction.atomic():
        account = create_billing_account(organization=organization, name="Maria Souza", email="maria@example.com")
        invoice = Invoice.objects.create(organization=organization, account=account, number=1, status="open",
                                         subtotal=19900, total=19900, amount_due=19900, due_date=TODAY, created_at=now)
        InvoiceLine.objects.create(invoice=invoice, description="Pro × 1", quantity=1, unit_amount=19900, amount=19900)
        Payment.objects.create(
            organization=organization, invoice=invoice, account=account, provider="sandbox", amount=19900,
            method="pix", status="pending", idempotency_key="bench-pix", created_at=now, updated_at=now,
            expires_at=now + timedelta(days=1),
            pix_copy_paste="00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-42665544000052040000530398654"
                           "06199.005802BR5913Acme Software6009SAO PAULO62070503***6304A1B2")
        _, url = links.create_link(organization=organization, kind="invoice", object_id=invoice.public_id)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def measure_page(bench_db, organization, seconds: float, clients: int) -> dict:
    path = invoice_page_path(organization)
    port = _free_port()
    log = open(bench_db.data_dir / "web.log", "wb")  # noqa: SIM115 - closed below
    server = subprocess.Popen([sys.executable, "-m", "cobrador.cli", "web", "--port", str(port), "--workers", "2"],
                              env={**bench_db.env, "COBRADOR_PUBLIC_URL": f"http://127.0.0.1:{port}"},
                              stdout=log, stderr=subprocess.STDOUT, cwd=bench_db.data_dir)
    try:
        def answering() -> bool:
            try:
                return _get(http.client.HTTPConnection("127.0.0.1", port, timeout=2), "/healthz") == 200
            except OSError:
                return False

        wait_until(answering, timeout=60, what="cobrador web")
        for target in (path, "/healthz"):  # warm both workers
            sustained_rate(port, target, 1.0, clients)
        page = sustained_rate(port, path, seconds, clients)
        trivial = sustained_rate(port, "/healthz", seconds, clients)
        paced = paced_latency(port, path, page["requests_per_second"] / 2, seconds, clients)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()
    ratio = round(page["requests_per_second"] / trivial["requests_per_second"], 3)
    return {"invoice_page": page, "trivial_view_ceiling": trivial, "page_over_ceiling": ratio,
            "at_half_rate": paced, "clients": clients, "seconds_each": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", type=int, default=100_000, help="proposals (default 100000; a fifth expire, "
                                                               "a fifth are due a reminder)")
    parser.add_argument("--page-seconds", type=float, default=10.0, help="seconds per load measurement")
    parser.add_argument("--clients", type=int, default=8, help="loopback connections for the page load")
    args = parser.parse_args()

    with fresh_database(args.database) as bench_db:
        from django.db import transaction

        from cobrador.catalog.services import create_plan
        from cobrador.core import clock
        from cobrador.events.models import Event
        from cobrador.notifications.models import Notice
        from cobrador.organizations.services import create_organization
        from cobrador.pages.models import PageLink
        from cobrador.proposals.models import Proposal, ProposalReminder

        clock.set(SETUP_AT)
        with transaction.atomic():
            organization = create_organization(name="Bench", mode="test", billing_email="seller@example.test")
            ceiling_org = create_organization(name="Ceiling", mode="test", billing_email="c@example.test")
            plan = create_plan(organization=organization, name="Pro", amount=19900)
            ceiling_plan = create_plan(organization=ceiling_org, name="Pro", amount=19900)
        setup_started = time.perf_counter()
        setup(organization, args.n, plan)
        fifth = args.n // 5
        setup(ceiling_org, 2 * fifth, ceiling_plan)  # the rows the ceilings update, never due (drafts)
        Proposal.objects.filter(organization=ceiling_org).update(status="draft")
        setup_seconds = time.perf_counter() - setup_started
        analyze_tables()
        gc.collect()
        gc.freeze()

        written_models = [Event, Notice, ProposalReminder, PageLink]
        ceiling_rows = list(Proposal.objects.filter(organization=ceiling_org).order_by("pk"))
        expiration, written = run_sweep("proposal-expiration", written_models)
        expiration_ceiling = measure_ceiling(written, ceiling_rows[:fifth], ["status", "expired_at", "updated_at"],
                                             {"status": "draft", "expired_at": SWEEP_AT, "updated_at": SWEEP_AT})
        analyze_tables()
        reminder, written = run_sweep("proposal-reminder", written_models)
        reminder_ceiling = measure_ceiling(written, ceiling_rows[fifth:2 * fifth], ["updated_at"],
                                           {"updated_at": SWEEP_AT})
        load_before_page = [round(x, 2) for x in os.getloadavg()]
        page = measure_page(bench_db, organization, args.page_seconds, args.clients)
        page["load_average_before"] = load_before_page  # 1, 5, 15 min: other processes share the cores

        expiration_ratio = round(expiration["seconds"] / expiration_ceiling["seconds"], 2)
        reminder_ratio = round(reminder["seconds"] / reminder_ceiling["seconds"], 2)
        targets = {
            "expiration_over_ceiling_max": TARGET_SWEEP_RATIO, "reminder_over_ceiling_max": TARGET_SWEEP_RATIO,
            "expiration_met": expiration_ratio <= TARGET_SWEEP_RATIO and expiration["counts"].get("expired") == fifth,
            "reminder_met": reminder_ratio <= TARGET_SWEEP_RATIO and reminder["counts"].get("reminded") == fifth,
            "reruns_write_nothing": expiration["rerun"]["writes_nothing"] and reminder["rerun"]["writes_nothing"],
            "page_ratio_min": TARGET_PAGE_RATIO, "page_ratio_met": page["page_over_ceiling"] >= TARGET_PAGE_RATIO,
            "p99_ms_max": TARGET_P99_MS, "p99_met": page["at_half_rate"]["p99_ms"] <= TARGET_P99_MS
            and page["at_half_rate"]["errors"] == 0,
        }
        print_json({
            "benchmark": "proposals",
            "database": bench_db.vendor,
            "proposals": args.n,
            "setup_seconds": round(setup_seconds, 1),
            "expiration": {**expiration, "ceiling": expiration_ceiling, "sweep_over_ceiling": expiration_ratio},
            "reminder": {**reminder, "ceiling": reminder_ceiling, "sweep_over_ceiling": reminder_ratio},
            "page": page,
            "targets": targets,
            "meets_targets": all(v for k, v in targets.items() if k.endswith("_met") or k == "reruns_write_nothing"),
            "peak_rss_mb": round(own_peak_rss_bytes() / 2**20, 1),
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
