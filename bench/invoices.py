"""Billing-day benchmark: the subscription-renewal sweep, then the invoice-generation sweep, over N
subscriptions whose period ends, each against a ceiling measured in the same run.

    python bench/invoices.py --n 100000                 # SQLite in a temporary directory
    python bench/invoices.py --n 100000 --database postgres://postgres@127.0.0.1:5432/cobrador_bench

Setup (not measured): one organization with a webhook endpoint for every event and the default
notification settings; four plans (three monthly, one yearly); N accounts, each with a default card;
N active subscriptions whose monthly period ends at DAY (every 5th with a coupon: 10% forever, R$ 20 off
for 3 periods or 50% once; every 10th account with R$ 50 of credit), each with its last period invoiced.

Each sweep runs as `run_job` in a fresh process (as a worker runs it), timed inside that process, which
also reports its peak resident memory. Then:

- ceiling: the rows the sweep wrote (every row it inserted, in every table, and every subscription,
  or credit grant it changed) copied at once into empty tables of the same shape, with the
  same indexes: PostgreSQL COPY, or on SQLite one bulk transaction;
- rerun: the same sweep again, which must write nothing (its JobRun row aside).

Prints one JSON object. Targets for 100k: invoice generation <= 25x the ceiling and <= 120 s on
PostgreSQL, <= 90 s on SQLite; renewal <= 60 s on PostgreSQL; a rerun writes 0 rows in <= 20% of the
first run's time; peak memory <= 1 GB. A benchmark, not a timed test: reported, never asserted.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

from _common import add_database_argument, fresh_database, peak_rss_bytes, print_json

DAY = datetime(2026, 5, 1, 3, 0, tzinfo=UTC)  # 00:00 in São Paulo: the periods end here
RENEWAL_AT = DAY + timedelta(minutes=5)
INVOICING_AT = DAY + timedelta(hours=1)
TARGETS = {
    "invoice-generation": {"postgresql": {"seconds": 120.0, "ceiling_ratio": 25.0}, "sqlite": {"seconds": 90.0}},
    "subscription-renewal": {"postgresql": {"seconds": 60.0}},
}
RERUN_FRACTION = 0.2
PEAK_MEMORY_MB = 1024
# Rows whose changes count as written, besides every inserted row (found by primary key).
CHANGED = {
    "subscriptions.Subscription": ["status", "current_period_start", "current_period_end", "coupon_periods_used",
                                   "uninvoiced_since", "updated_at"],
    "customers.CreditGrant": ["remaining"],
}
NOT_COUNTED = {"jobs.JobRun"}  # one bookkeeping row per run, rerun included


def setup(n: int) -> None:
    from django.db import transaction

    from cobrador.catalog.models import Coupon, Plan
    from cobrador.core import clock
    from cobrador.customers.models import BillingAccount, CreditGrant, PaymentMethod
    from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence
    from cobrador.organizations.services import create_organization
    from cobrador.subscriptions.models import Subscription
    from cobrador.webhooks.models import WebhookEndpoint

    start = DAY - timedelta(days=30)  # April has 30 days: every period is 2026-04-01 .. 2026-05-01
    clock.set(start)
    with transaction.atomic():
        organization = create_organization(name="Bench", billing_email="billing@example.test")
        WebhookEndpoint.objects.create(organization=organization, url="https://hooks.example.test/cobrador",
                                       enabled_events=["*"], secret="whsec_" + "A" * 32, created_at=start,
                                       updated_at=start)
        plans = [Plan.objects.create(organization=organization, name=name, amount=amount, interval=interval,
                                     created_at=start)
                 for name, amount, interval in (("Starter", 4900, "month"), ("Pro", 9900, "month"),
                                                ("Business", 29900, "month"), ("Pro yearly", 99000, "year"))]
        monthly = plans[:3]
        coupons = [Coupon.objects.create(organization=organization, code=code, created_at=start, **terms)
                   for code, terms in (
                       ("LOYAL10", {"percent_off": 10, "duration": "forever"}),
                       ("WELCOME20", {"amount_off": 2000, "currency": "BRL", "duration": "repeating",
                                      "duration_in_periods": 3}),
                       ("HALF", {"percent_off": 50, "duration": "once"}))]
    number = 0
    for first in range(0, n, 5000):
        size = min(5000, n - first)
        with transaction.atomic():
            accounts = BillingAccount.objects.bulk_create([
                BillingAccount(organization=organization, name=f"Cliente {first + i}",
                               email=f"c{first + i}@example.test",
                               document="52998224725", document_type="cpf", created_at=start, updated_at=start)
                for i in range(size)], batch_size=1000)
            PaymentMethod.objects.bulk_create([
                PaymentMethod(organization=organization, account=a, type="card", card_brand="visa", card_last4="4242",
                              exp_month=12, exp_year=2040, gateway_token="tok_sandbox_visa", is_default=True,
                              created_at=start) for a in accounts], batch_size=1000)
            CreditGrant.objects.bulk_create([
                CreditGrant(organization=organization, account=a, amount=5000, remaining=5000, reason="bench",
                            created_at=start) for i, a in enumerate(accounts) if (first + i) % 10 == 3],
                batch_size=1000)
            subscriptions = []
            for i, account in enumerate(accounts):
                k = first + i
                coupon = coupons[(k // 5) % 3] if k % 5 == 0 else None
                subscriptions.append(Subscription(
                    organization=organization, account=account, plan=monthly[k % 3], quantity=1 + k % 4 // 3,
                    coupon=coupon, coupon_periods_used=1 if coupon else 0, status="active", started_at=start,
                    current_period_start=start, current_period_end=DAY, billing_anchor_day=1,
                    created_at=start, updated_at=start))
            Subscription.objects.bulk_create(subscriptions, batch_size=1000)
            invoices = []
            for subscription in subscriptions:
                number += 1
                amount = subscription.plan.amount * subscription.quantity
                invoices.append(Invoice(organization=organization, account=subscription.account,
                                        subscription=subscription, number=number, status="paid",
                                        period_start=start, period_end=DAY, subtotal=amount, total=amount,
                                        amount_paid=amount, amount_due=0, due_date=start.date(), created_at=start,
                                        paid_at=start))
            Invoice.objects.bulk_create(invoices, batch_size=1000)
            InvoiceLine.objects.bulk_create([
                InvoiceLine(invoice=invoice, plan=invoice.subscription.plan,
                            description=f"{invoice.subscription.plan.name} (monthly)",
                            quantity=invoice.subscription.quantity, unit_amount=invoice.subscription.plan.amount,
                            amount=invoice.subtotal, period_start=start, period_end=DAY) for invoice in invoices],
                batch_size=1000)
    InvoiceNumberSequence.objects.update_or_create(organization=organization, defaults={"last_number": number})


# --- what a run wrote ----------------------------------------------------------------------------


def _models():
    from django.apps import apps

    return [m for m in apps.get_models() if not m._meta.proxy and m._meta.managed
            and m._meta.pk.get_internal_type() in ("AutoField", "BigAutoField")]


def snapshot() -> dict:
    """The highest primary key of every table, and the watched columns of the rows in CHANGED."""
    state = {"max_pk": {}, "changed": {}}
    for model in _models():
        label = model._meta.label
        state["max_pk"][label] = model.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        if label in CHANGED:
            state["changed"][label] = {row[0]: row[1:] for row in
                                       model.objects.values_list("pk", *CHANGED[label])}
    return state


def written_rows(before: dict) -> dict[str, list[int]]:
    """Primary keys of the rows written since `before`, by model label (JobRun left out)."""
    after = snapshot()
    written = {}
    for model in _models():
        label = model._meta.label
        if label in NOT_COUNTED:
            continue
        pks = list(model.objects.filter(pk__gt=before["max_pk"][label]).values_list("pk", flat=True))
        if label in CHANGED:
            old = before["changed"][label]
            pks += [pk for pk, values in after["changed"][label].items() if pk in old and old[pk] != values]
        if pks:
            written[label] = sorted(pks)
    return written


# --- the ceiling ---------------------------------------------------------------------------------


def measure_ceiling(written: dict[str, list[int]], vendor: str) -> dict:
    """Copy exactly these rows at once into empty clones of their tables (same columns, same indexes)."""
    from django.apps import apps
    from django.db import connection

    tables = {label: apps.get_model(label)._meta.db_table for label in written}
    data = {}
    with connection.cursor() as cursor:
        for label, pks in written.items():
            table = tables[label]
            rows = []
            for start in range(0, len(pks), 20000):
                part = pks[start:start + 20000]
                cursor.execute(f'SELECT * FROM "{table}" WHERE id IN ({", ".join(["%s"] * len(part))})', part)
                rows += cursor.fetchall()
            data[table] = rows
            _create_clone(cursor, table, vendor)
    raw = connection.connection
    started = time.perf_counter()
    if vendor == "postgresql":
        with raw.transaction(), raw.cursor() as cursor:
            for table, rows in data.items():
                with cursor.copy(f'COPY "bench_ceiling_{table}" FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
    else:
        raw.execute("BEGIN IMMEDIATE")
        for table, rows in data.items():
            if rows:
                raw.executemany(f'INSERT INTO "bench_ceiling_{table}" VALUES ({", ".join(["?"] * len(rows[0]))})',
                                rows)
        raw.execute("COMMIT")
    seconds = time.perf_counter() - started
    with connection.cursor() as cursor:
        for table in data:
            cursor.execute(f'DROP TABLE "bench_ceiling_{table}"')
    return {"seconds": round(seconds, 3), "rows": sum(len(rows) for rows in data.values())}


def _create_clone(cursor, table: str, vendor: str) -> None:
    clone = f"bench_ceiling_{table}"
    if vendor == "postgresql":
        cursor.execute(f'CREATE TABLE "{clone}" (LIKE "{table}" INCLUDING ALL)')
        return
    # SQLite: the table's own CREATE statements, renamed (its indexes included; sqlite_autoindex_* come
    # with the table's UNIQUE constraints).
    cursor.execute("SELECT type, name, sql FROM sqlite_master WHERE tbl_name = %s AND sql IS NOT NULL "
                   "ORDER BY type = 'index'", [table])
    for kind, name, sql in cursor.fetchall():
        sql = sql.replace(f'"{table}"', f'"{clone}"', 1) if kind == "table" else \
            sql.replace(f'"{name}"', f'"bench_ceiling_{name}"', 1).replace(f'ON "{table}"', f'ON "{clone}"', 1)
        cursor.execute(sql)


# --- one sweep in its own process ------------------------------------------------------------------


def run_in_process(job: str, at: datetime, env: dict) -> dict:
    """`run_job(job)` as of `at` in a fresh process: its time and that process's peak memory."""
    output = subprocess.run([sys.executable, __file__, "run-job", job, at.isoformat()], env=env,
                            capture_output=True, text=True, check=False)
    if output.returncode != 0:
        raise SystemExit(f"bench: {job} failed:\n{output.stderr[-3000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def _run_job_here(job: str, at: str) -> None:
    import django

    django.setup()
    from cobrador.core import clock
    from cobrador.jobs.runner import run_job

    at_time = datetime.fromisoformat(at)
    profile_dir = os.environ.get("BENCH_PROFILE_DIR")  # set by --profile: a cProfile dump per sweep
    profiler = None
    if profile_dir:
        import cProfile

        profiler = cProfile.Profile()
    with clock.frozen_at(at_time):
        started = time.perf_counter()
        if profiler:
            profiler.enable()
        run = run_job(job, as_of=at_time, trigger="cli")
        seconds = time.perf_counter() - started
    if profiler and run.items_done:
        profiler.disable()
        profiler.dump_stats(os.path.join(profile_dir, f"{job}.prof"))
    print(json.dumps({"seconds": round(seconds, 3), "status": run.status, "items_done": run.items_done,
                      "items_skipped": run.items_skipped, "counts": run.counts,
                      # VmHWM, not ru_maxrss: after fork and exec, ru_maxrss still counts the parent's pages.
                      "peak_rss_mb": round(peak_rss_bytes(os.getpid()) / 2**20, 1)}))


def measure(job: str, at: datetime, bench_db, vendor: str) -> dict:
    from django.db import connections

    before = snapshot()
    connections.close_all()
    first = run_in_process(job, at, bench_db.env)
    written = written_rows(before)
    ceiling = measure_ceiling(written, vendor)
    before = snapshot()
    connections.close_all()
    rerun = run_in_process(job, at, bench_db.env)
    rewritten = written_rows(before)
    rows = sum(len(pks) for pks in written.values())
    target = TARGETS[job].get(vendor, {})
    result = {
        "seconds": first["seconds"],
        "rows_written": rows,
        "rows_by_model": {label: len(pks) for label, pks in written.items()},
        "rows_per_second": round(rows / first["seconds"], 1),
        "counts": first["counts"],
        "status": first["status"],
        "peak_rss_mb": first["peak_rss_mb"],
        "ceiling": ceiling,
        "over_ceiling": round(first["seconds"] / ceiling["seconds"], 1),
        "rerun": {"seconds": rerun["seconds"], "rows_written": sum(len(pks) for pks in rewritten.values()),
                  "fraction_of_first": round(rerun["seconds"] / first["seconds"], 3)},
    }
    met = {"rerun": result["rerun"]["rows_written"] == 0 and result["rerun"]["fraction_of_first"] <= RERUN_FRACTION,
           "memory": first["peak_rss_mb"] <= PEAK_MEMORY_MB}
    if "seconds" in target:
        met["seconds"] = first["seconds"] <= target["seconds"]
    if "ceiling_ratio" in target:
        met["ceiling_ratio"] = result["over_ceiling"] <= target["ceiling_ratio"]
    result["targets"] = {**target, "rerun_fraction": RERUN_FRACTION, "peak_rss_mb": PEAK_MEMORY_MB, "met": met}
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", type=int, default=100_000, help="subscriptions due (default 100000)")
    parser.add_argument("--profile", metavar="DIR", help="write a cProfile dump of each first run into DIR")
    args = parser.parse_args()

    extra_env = {"COBRADOR_TIME_TRAVEL": "1"}
    if args.profile:
        os.makedirs(args.profile, exist_ok=True)
        extra_env["BENCH_PROFILE_DIR"] = os.path.abspath(args.profile)
    with fresh_database(args.database, extra_env=extra_env) as bench_db:
        setup_started = time.perf_counter()
        setup(args.n)
        setup_seconds = time.perf_counter() - setup_started
        renewal = measure("subscription-renewal", RENEWAL_AT, bench_db, bench_db.vendor)
        invoicing = measure("invoice-generation", INVOICING_AT, bench_db, bench_db.vendor)
        print_json({
            "benchmark": "billing day: subscription-renewal then invoice-generation",
            "database": bench_db.vendor,
            "subscriptions": args.n,
            "cpus": os.cpu_count(),
            "load_average": [round(x, 2) for x in os.getloadavg()],
            "setup_seconds": round(setup_seconds, 1),
            "subscription-renewal": renewal,
            "invoice-generation": invoicing,
            "meets_targets": all(all(step["targets"]["met"].values()) for step in (renewal, invoicing)),
        })
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["run-job"]:
        _run_job_here(sys.argv[2], sys.argv[3])
        sys.exit(0)
    sys.exit(main())
