"""Analytics benchmark: the daily snapshot against one hand-written SQL aggregation of the same figures,
and the dashboard's API reads of two years of daily data, at N and at 100 subscriptions.

    python bench/analytics.py                        # SQLite in a temporary directory, N = 100,000
    python bench/analytics.py --n 20000 --database postgres://postgres@127.0.0.1:5432/cobrador_bench

Setup (not measured): an organization created two years (730 local days) before the measured day, N
customers with one subscription each and their two years of MRR ledger: each one's `new` on a random
day, then (at random) an expansion, a contraction, a churn (voluntary or involuntary) and a
reactivation after it: about 1.7 movements per customer. The last 31 days hold one invoice per paying
customer and its payment (9 in 10 succeed, by card, boleto or PIX), plus dunning recoveries. The
subscriptions table itself is not written: neither the snapshot nor the API reads it (the ledger is
their history). A second organization of 100 customers gets the same history, for the API comparison.

1. `usage-daily-snapshot` as of the day after the measured day, with no snapshot yet: it computes all
   730 days (what a new installation's first run does). Ceiling: ONE hand-written SQL statement (CTEs,
   window sums) computing the same figures per local day straight from the tables (ledger, invoices,
   payments, recovery records), run in the same process and the same transaction shape. The job's
   figures are checked equal to the SQL's. Then the rerun (the job again: it recomputes its latest
   day only), and one day's step (the next day's run).
2. The dashboard's API: GET /v1/analytics/mrr and /movements for two years of daily points and
   /summary, in-process through Django's test client (auth, middleware, serialization), repeated;
   p50/p99 per call at N and at 100 customers. For comparison, the same two years of daily points
   computed live from the ledger (the walk the API does for days with no snapshot), p99 and the ratio.

Targets (issue 19): first run <= 3x the ceiling; rerun <= 20 % of the first; API p99 <= 20 ms; p99 at N
within 1.5x of p99 at 100. Prints one JSON object; reported, never asserted.
"""

import argparse
import gc
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta

from _common import add_database_argument, analyze_tables, fresh_database, percentile, print_json

DAYS = 730
MEASURED_DAY = date(2026, 3, 1)  # the last day of the history (local, America/Sao_Paulo)
RUN_AT = datetime(2026, 3, 2, 3, 15, tzinfo=UTC)  # 00:15 on March 2 in Sao Paulo
API_AT = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
PRICES = (4900, 9900, 19900, 49900, 99900, 16667)  # 16667: a yearly R$ 2.000,00
TARGET_FIRST_RATIO = 3.0
TARGET_RERUN_FRACTION = 0.2
TARGET_P99_MS = 20.0
TARGET_SCALE_RATIO = 1.5
OFFSET_HOURS = 3  # Sao Paulo has kept UTC-3 all year since 2019: a fixed offset in the SQL ceiling


def _local_start(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, OFFSET_HOURS, tzinfo=UTC)


def build_history(organization, n: int, seed: int) -> dict:
    """N customers and their ledger (and the last month's invoices and payments), in bulk."""
    from django.db import transaction

    from cobrador.core.bulk import build, insert_objects
    from cobrador.customers.models import BillingAccount
    from cobrador.dunning.models import RecoveryRecord
    from cobrador.invoicing.models import Invoice
    from cobrador.payments.models import Payment
    from cobrador.usage.models import DEFINITION_VERSION, MrrMovement

    rng = random.Random(seed)
    first_day = MEASURED_DAY - timedelta(days=DAYS - 1)
    now = _local_start(MEASURED_DAY)
    counts = {"customers": n, "movements": 0, "invoices": 0, "payments": 0}
    batch = 5000
    number = 0
    for start in range(0, n, batch):
        size = min(batch, n - start)
        with transaction.atomic():
            accounts = [BillingAccount(organization=organization, name=f"C{start + i}", email="c@example.com",
                                       created_at=now, updated_at=now) for i in range(size)]
            BillingAccount.objects.bulk_create(accounts, batch_size=size)
            if accounts[0].pk is None:  # a backend that returns no ids: read them back
                accounts = list(BillingAccount.objects.filter(organization=organization).order_by("-pk")[:size])[::-1]
            movements, invoices, payment_of = [], [], []
            for account in accounts:
                day = rng.randrange(DAYS)
                at = _local_start(first_day + timedelta(days=day)) + timedelta(minutes=rng.randrange(24 * 60))
                mrr, ever = rng.choice(PRICES), True
                steps = [("new", 0, mrr, at)]
                for kind, chance in (("expansion", 0.3), ("contraction", 0.15), ("churn", 0.2)):
                    if rng.random() < chance:
                        at = at + timedelta(days=rng.randrange(1, 120), minutes=rng.randrange(600))
                        if at >= now + timedelta(days=1):
                            break
                        before = mrr
                        mrr = {"expansion": mrr * 2, "contraction": max(mrr // 2, 1), "churn": 0}[kind]
                        steps.append((kind, before, mrr, at))
                if mrr == 0 and ever and rng.random() < 0.3:
                    at = at + timedelta(days=rng.randrange(1, 90))
                    if at < now + timedelta(days=1):
                        mrr = rng.choice(PRICES)
                        steps.append(("reactivation", 0, mrr, at))
                for kind, before, after, moment in steps:
                    movements.append(build(
                        MrrMovement, organization=organization, account_id=account.pk, currency="BRL", kind=kind,
                        churn_type=(rng.choice(("voluntary", "involuntary")) if kind == "churn" else ""),
                        mrr_before=before, mrr_after=after, delta=after - before, occurred_at=moment,
                        definition_version=DEFINITION_VERSION, created_at=moment))
                if mrr > 0:  # this month's invoice and payment
                    number += 1
                    issued = now - timedelta(days=rng.randrange(31), minutes=rng.randrange(24 * 60))
                    paid = rng.random() < 0.9
                    invoices.append(build(
                        Invoice, organization=organization, account_id=account.pk, number=number,
                        status="paid" if paid else "open", subtotal=mrr, total=mrr, amount_paid=mrr if paid else 0,
                        amount_due=0 if paid else mrr, due_date=issued.date(), created_at=issued,
                        paid_at=issued + timedelta(minutes=5) if paid else None))
                    payment_of.append((paid, issued, mrr, account.pk))
            insert_objects(movements)
            insert_objects(invoices, returning_ids=True)
            payments, recoveries = [], []
            for invoice, (paid, issued, amount, account_id) in zip(invoices, payment_of, strict=True):
                method = rng.choice(("card", "card", "card", "bank_slip", "pix"))
                payments.append(build(
                    Payment, organization=organization, invoice_id=invoice.pk, account_id=account_id, method=method,
                    status="succeeded" if paid else "failed", amount=amount, amount_paid=amount if paid else 0,
                    currency="BRL", provider="sandbox", idempotency_key=f"bench-{invoice.pk}", created_at=issued,
                    updated_at=issued, paid_at=issued + timedelta(minutes=5) if paid else None,
                    failed_at=None if paid else issued + timedelta(minutes=5)))
            insert_objects(payments, returning_ids=True)
            for payment, invoice in zip(payments, invoices, strict=True):
                if payment.status == "succeeded" and rng.random() < 0.05:
                    recoveries.append(build(
                        RecoveryRecord, organization=organization, invoice_id=invoice.pk,
                        account_id=invoice.account_id, payment_id=payment.pk, attempt_number=1, method=payment.method,
                        outcome="succeeded", amount=payment.amount, currency="BRL", attempted_at=payment.paid_at,
                        created_at=payment.paid_at))
            insert_objects(recoveries)
            counts["movements"] += len(movements)
            counts["invoices"] += len(invoices)
            counts["payments"] += len(payments)
    return counts


# The ceiling: the same per-day figures as one SQL statement straight from the tables. Local days by the
# fixed offset; the running MRR and paying customers by window sums over the days.
CEILING_SQL = """
WITH days AS (
    SELECT {day_of_movement} AS day, kind, churn_type, delta, mrr_before, mrr_after
    FROM usage_mrrmovement WHERE organization_id = %(org)s AND currency = 'BRL' AND occurred_at < %(end)s
), per_day AS (
    SELECT day,
        SUM(delta) AS net,
        SUM(CASE WHEN mrr_before = 0 AND mrr_after > 0 THEN 1 WHEN mrr_before > 0 AND mrr_after = 0 THEN -1
            ELSE 0 END) AS active_change,
        SUM(CASE WHEN kind = 'new' THEN delta ELSE 0 END) AS new,
        SUM(CASE WHEN kind = 'expansion' THEN delta ELSE 0 END) AS expansion,
        SUM(CASE WHEN kind = 'reactivation' THEN delta ELSE 0 END) AS reactivation,
        SUM(CASE WHEN kind = 'contraction' THEN -delta ELSE 0 END) AS contraction,
        SUM(CASE WHEN kind = 'churn' THEN -delta ELSE 0 END) AS churn,
        SUM(CASE WHEN kind = 'churn' AND churn_type = 'voluntary' THEN -delta ELSE 0 END) AS churn_voluntary,
        SUM(CASE WHEN kind = 'churn' AND churn_type = 'involuntary' THEN -delta ELSE 0 END) AS churn_involuntary,
        SUM(CASE WHEN kind = 'new' THEN 1 ELSE 0 END) AS new_count,
        SUM(CASE WHEN kind = 'churn' THEN 1 ELSE 0 END) AS churn_count
    FROM days GROUP BY day
), running AS (
    SELECT day, new, expansion, reactivation, contraction, churn, churn_voluntary, churn_involuntary, new_count,
        churn_count, SUM(net) OVER (ORDER BY day) AS mrr, SUM(active_change) OVER (ORDER BY day) AS active
    FROM per_day
), invoices AS (
    SELECT {day_of_invoice} AS day, COUNT(*) AS issued, SUM(total) AS issued_amount
    FROM invoicing_invoice WHERE organization_id = %(org)s AND status <> 'draft'
        AND created_at >= %(start)s AND created_at < %(end)s GROUP BY 1
), payments AS (
    SELECT {day_of_payment} AS day, method, COUNT(*) AS received, SUM(amount_paid) AS received_amount
    FROM payments_payment WHERE organization_id = %(org)s AND status IN ('succeeded', 'refunded')
        AND paid_at >= %(start)s AND paid_at < %(end)s GROUP BY 1, 2
), failures AS (
    SELECT {day_of_failure} AS day, COUNT(*) AS failed
    FROM payments_payment WHERE organization_id = %(org)s AND failed_at >= %(start)s AND failed_at < %(end)s
    GROUP BY 1
), recovered AS (
    SELECT {day_of_recovery} AS day, SUM(amount) AS recovered
    FROM dunning_recoveryrecord WHERE organization_id = %(org)s AND outcome = 'succeeded'
        AND attempted_at >= %(start)s AND attempted_at < %(end)s GROUP BY 1
)
SELECT r.day, r.mrr, r.active, r.new, r.expansion, r.reactivation, r.contraction, r.churn, r.churn_voluntary,
    r.churn_involuntary, r.new_count, r.churn_count, i.issued, i.issued_amount, p.method, p.received,
    p.received_amount, f.failed, rc.recovered
FROM running r
LEFT JOIN invoices i ON i.day = r.day
LEFT JOIN payments p ON p.day = r.day
LEFT JOIN failures f ON f.day = r.day
LEFT JOIN recovered rc ON rc.day = r.day
WHERE r.day >= %(first_day)s
ORDER BY r.day, p.method
"""


def ceiling_sql(vendor: str) -> str:
    if vendor == "postgresql":
        day = "(({col}) AT TIME ZONE 'America/Sao_Paulo')::date"
    else:
        day = "date({col}, '-" + str(OFFSET_HOURS) + " hours')"
    return CEILING_SQL.format(
        day_of_movement=day.format(col="occurred_at"), day_of_invoice=day.format(col="created_at"),
        day_of_payment=day.format(col="paid_at"), day_of_failure=day.format(col="failed_at"),
        day_of_recovery=day.format(col="attempted_at"))


def run_ceiling(organization, first_day: date) -> tuple[float, dict]:
    from django.db import connection, transaction

    params = {"org": organization.pk, "start": _local_start(first_day),
              "end": _local_start(MEASURED_DAY + timedelta(days=1)),
              "first_day": first_day if connection.vendor == "postgresql" else first_day.isoformat()}
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(ceiling_sql(connection.vendor), params)
        rows = cursor.fetchall()
    seconds = time.perf_counter() - started
    by_day = {}
    for row in rows:
        day = row[0] if isinstance(row[0], date) else date.fromisoformat(row[0])
        by_day.setdefault(day, {"mrr": row[1], "active": row[2], "new": row[3], "churn": row[7],
                                "invoices_issued": row[12] or 0, "payments_received": 0})
        by_day[day]["payments_received"] += row[15] or 0
    return seconds, by_day


def compare(organization, ceiling: dict) -> dict:
    """The job's rows against the SQL's, on the days the ledger moved."""
    from cobrador.usage.models import UsageDailySnapshot

    mismatches = 0
    checked = 0
    for row in UsageDailySnapshot.objects.filter(organization=organization, day__in=list(ceiling)).values(
            "day", "mrr", "active_customers", "movements", "invoices_issued", "payments_received"):
        expected = ceiling[row["day"]]
        checked += 1
        mine = {"mrr": row["mrr"], "active": row["active_customers"], "new": row["movements"]["new"],
                "churn": row["movements"]["churn"], "invoices_issued": row["invoices_issued"],
                "payments_received": row["payments_received"]}
        if mine != expected:
            mismatches += 1
    return {"days_compared": checked, "mismatches": mismatches}


def timed_job(name: str, at: datetime) -> dict:
    from cobrador.core import clock
    from cobrador.jobs.runner import run_job

    clock.set(at)
    started = time.perf_counter()
    run = run_job(name, as_of=at)
    return {"seconds": round(time.perf_counter() - started, 3), "status": run.status, "counts": run.counts}


def api_latency(key: str, path: str, params: dict, repeat: int) -> dict:
    from django.test import Client

    client = Client()
    headers = {"Authorization": f"Bearer {key}"}
    timings = []
    for i in range(repeat + 3):
        started = time.perf_counter()
        response = client.get(path, params, headers=headers)
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200:
            raise SystemExit(f"bench: {path} answered {response.status_code}: {response.content[:300]!r}")
        if i >= 3:  # the first calls warm the caches
            timings.append(elapsed)
    return {"p50_ms": round(percentile(timings, 50), 2), "p99_ms": round(percentile(timings, 99), 2),
            "calls": repeat, "bytes": len(response.content)}


def live_latency(organization, first_day: date, repeat: int) -> dict:
    """The same daily points computed live from the ledger (no snapshot), as the API does for days after
    the last snapshot."""
    from cobrador.usage.analytics import _ledger_days

    timings = []
    for _ in range(repeat):
        started = time.perf_counter()
        _ledger_days(organization, first_day, MEASURED_DAY, mrr=0, active=0)
        timings.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(percentile(timings, 50), 2), "p99_ms": round(percentile(timings, 99), 2),
            "calls": repeat}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--n", type=int, default=100_000, help="subscriptions (customers), default 100000")
    parser.add_argument("--calls", type=int, default=200, help="API calls per measured route (default 200)")
    parser.add_argument("--seed", type=int, default=19)
    args = parser.parse_args()

    with fresh_database(args.database) as bench_db:
        from django.db import transaction

        from cobrador.core import clock
        from cobrador.organizations.services import create_api_key, create_organization

        first_day = MEASURED_DAY - timedelta(days=DAYS - 1)
        clock.set(_local_start(first_day))
        with transaction.atomic():
            big = create_organization(name="Bench", mode="test")
            small = create_organization(name="Small", mode="test")
            _, big_key = create_api_key(organization=big)
            _, small_key = create_api_key(organization=small)
        setup_started = time.perf_counter()
        rows = build_history(big, args.n, args.seed)
        small_rows = build_history(small, 100, args.seed + 1)
        setup_seconds = round(time.perf_counter() - setup_started, 1)
        analyze_tables()
        gc.collect()
        gc.freeze()

        first = timed_job("usage-daily-snapshot", RUN_AT)
        # The job computed both organizations: so does the ceiling.
        ceiling_seconds, ceiling = run_ceiling(big, first_day)
        small_ceiling_seconds, small_ceiling = run_ceiling(small, first_day)
        ceiling_seconds += small_ceiling_seconds
        check = compare(big, ceiling)
        small_check = compare(small, small_ceiling)
        check = {key: check[key] + small_check[key] for key in check}
        rerun = timed_job("usage-daily-snapshot", RUN_AT + timedelta(minutes=5))
        next_day = timed_job("usage-daily-snapshot", RUN_AT + timedelta(days=1))
        timed_job("usage-daily-snapshot", RUN_AT + timedelta(days=1))  # the small organization is done too
        timed_job("usage-monthly-snapshot", RUN_AT)

        clock.set(API_AT)
        window = {"from": first_day.isoformat(), "to": MEASURED_DAY.isoformat(), "interval": "day"}
        api = {}
        for label, key in (("n", big_key), ("small", small_key)):
            api[label] = {
                "mrr": api_latency(key, "/v1/analytics/mrr", window, args.calls),
                "movements": api_latency(key, "/v1/analytics/movements", window, args.calls),
                "summary": api_latency(key, "/v1/analytics/summary", {}, args.calls),
            }
        live = live_latency(big, first_day, max(5, args.calls // 20))

        worst_n = max(route["p99_ms"] for route in api["n"].values())
        worst_small = max(route["p99_ms"] for route in api["small"].values())
        first_ratio = round(first["seconds"] / ceiling_seconds, 2) if ceiling_seconds else None
        rerun_fraction = round(rerun["seconds"] / first["seconds"], 3) if first["seconds"] else None
        scale_ratio = round(worst_n / worst_small, 2) if worst_small else None
        targets = {
            "first_over_ceiling_max": TARGET_FIRST_RATIO,
            "first_met": first_ratio is not None and first_ratio <= TARGET_FIRST_RATIO and check["mismatches"] == 0,
            "rerun_fraction_max": TARGET_RERUN_FRACTION,
            "rerun_met": rerun_fraction is not None and rerun_fraction <= TARGET_RERUN_FRACTION,
            "api_p99_ms_max": TARGET_P99_MS, "api_p99_met": worst_n <= TARGET_P99_MS,
            "scale_ratio_max": TARGET_SCALE_RATIO,
            "scale_met": scale_ratio is not None and scale_ratio <= TARGET_SCALE_RATIO,
        }
        try:
            with open("/proc/loadavg") as f:
                load = f.read().split()[:3]
        except OSError:
            load = None
        print_json({
            "benchmark": "analytics",
            "database": bench_db.vendor,
            "n": args.n,
            "setup": {**rows, "small": small_rows, "days": DAYS, "seconds": setup_seconds},
            "daily_snapshot": {
                "first_run": {**first, "days": first["counts"].get("days")},
                "ceiling_sql_seconds": round(ceiling_seconds, 3),
                "first_over_ceiling": first_ratio,
                "figures_equal_to_ceiling": check,
                "rerun": rerun, "rerun_fraction_of_first": rerun_fraction,
                "next_day": next_day,
            },
            "api": {**api, "worst_p99_ms_n": worst_n, "worst_p99_ms_small": worst_small,
                    "n_over_small_p99": scale_ratio,
                    "live_from_ledger_two_years": live,
                    "live_over_snapshot_p99": round(live["p99_ms"] / api["n"]["mrr"]["p99_ms"], 1)
                    if api["n"]["mrr"]["p99_ms"] else None},
            "load_average": load,
            "targets": targets,
            "meets_targets": all(v for k, v in targets.items() if k.endswith("_met")),
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
