"""Fault benchmark: a billing day for --n subscriptions with `kill -9` of sweep and worker processes at
random moments and (PostgreSQL only) one server restart, rerun to completion, then invariants by SQL.

    python bench/faults.py --n 20000                 # SQLite in a temporary directory
    python bench/faults.py --n 20000 --database postgres://postgres@127.0.0.1:5432/cobrador_bench_faults

The day (bench/invoices.py's setup: N monthly subscriptions whose period ends at DAY, a webhook endpoint
for every event, default notices; every 10th card declines): subscription-renewal, invoice-generation
(which enqueues charging for the workers), invoice-charging (the safety net), payment-retry a day later
(card, then boleto), payment-reconciliation (which settles the charges a killed worker left in flight) and
payment-retry again for the cases those opened, each as `cobrador jobs run NAME --at T` in its own process,
while two `cobrador worker` processes run the charging task and deliver webhooks (to a loopback receiver
verifying Standard Webhooks signatures) and e-mails (to an SMTP sink counting Message-IDs).

Faults: --kills `kill -9` spread at random moments over the day, each hitting the running sweep process
or a worker (restarted at once); on PostgreSQL one `pg_ctlcluster ... restart` (ls /etc/postgresql picks
the version) in the middle of the work. A sweep that died or failed is run again (its dead run is marked
abandoned once its heartbeat is stale) until it succeeds. Recovery time of a fault = seconds until the
work made progress again (a committed row of the day's tables counted after the fault).

Invariants, by SQL, must all be 0: duplicate or missing invoices per (subscription, period), gaps in
invoice numbers, invoices paid twice or charged twice at the provider, payments left in flight, dunning
attempts doubled or missing, open failed invoices without dunning, events without their webhook delivery,
deliveries or notices undelivered, runs left running. Webhooks and e-mails are at least once: repeats are
reported by kind, not violations.

Prints one JSON object; meets_targets = every fault survived and 0 violations. A benchmark, not a test.
"""

import argparse
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

from _common import REPO, ReceiverProcess, add_database_argument, fresh_database, print_json, start_worker
from invoices import DAY
from invoices import setup as setup_billing_day

JOB_ENV = {"COBRADOR_JOB_HEARTBEAT_SECONDS": "1", "COBRADOR_JOB_ABANDONED_AFTER": "4",
           "COBRADOR_OUTBOX_LEASE_SECONDS": "10", "COBRADOR_TASK_LOCK_TIMEOUT": "10", "COBRADOR_TIME_TRAVEL": "1",
           "COBRADOR_WEBHOOK_ALLOW_PRIVATE": "1", "COBRADOR_EMAIL_FROM": "billing@bench.test",
           "COBRADOR_LOG_LEVEL": "WARNING"}
# The workers fire no schedule of their own: the day's sweeps run at its times, started here.
JOBS_OFF = {f"COBRADOR_CRON_{name.upper().replace('-', '_')}": "off" for name in (
    "webhook-delivery", "subscription-renewal", "invoice-generation", "invoice-charging", "payment-reconciliation",
    "callback-retry", "notification-delivery", "card-expiring", "trial-ending", "invoice-reminders",
    "suspension-check", "payment-retry", "job-watch", "retention-cleanup")}


class SmtpSink:
    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(REPO / "tests" / "fakes" / "smtp.py")],
                                        stdout=subprocess.PIPE, text=True, cwd=REPO,
                                        env={**os.environ, "PYTHONPATH": str(REPO)})
        self.url = f"smtp://127.0.0.1:{int(self.process.stdout.readline())}"

    def stop(self) -> dict:
        import json

        self.process.terminate()
        stats = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return stats


def progress() -> int:
    """A count that grows with every committed piece of the day's work."""
    from django.db import connection

    tables = ("invoicing_invoice", "payments_payment", "dunning_recoveryrecord", "events_event")
    with connection.cursor() as cursor:
        total = 0
        for table in tables:
            cursor.execute(f"SELECT count(*) FROM {table}")
            total += cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM webhooks_webhookdelivery WHERE status = 'succeeded'")
        total += cursor.fetchone()[0]
        cursor.execute("SELECT count(*) FROM notifications_notice WHERE status = 'sent'")
        total += cursor.fetchone()[0]
    return total


def safe_progress() -> int | None:
    from django.db import connections

    try:
        return progress()
    except Exception:  # noqa: BLE001 - the server is restarting
        connections.close_all()
        return None


class Day:
    """The processes of the day, the faults and their recovery times."""

    def __init__(self, bench_db, env: dict, seed: int):
        self.bench_db = bench_db
        self.env = env
        self.random = random.Random(seed)
        self.sweep: subprocess.Popen | None = None
        self.workers = [self._worker() for _ in range(2)]
        self.lock = threading.Lock()
        self.faults: list[dict] = []
        self.sweep_reruns = 0

    def _worker(self):
        return start_worker(self.bench_db, "--concurrency", "2", "--interval", "0.1", env=self.env)

    def restart_dead_workers(self) -> None:
        for i, worker in enumerate(self.workers):
            if worker.process.poll() is not None:
                worker.stop()
                self.workers[i] = self._worker()

    def run_sweep(self, name: str, at: datetime | None = None) -> None:
        """`cobrador jobs run NAME [--at AT]` until it succeeds (a killed or failed run is rerun)."""
        while True:
            self.restart_dead_workers()
            command = [sys.executable, "-m", "cobrador.cli", "jobs", "run", name]
            if at is not None:
                command += ["--at", at.isoformat()]
            with self.lock:
                self.sweep = subprocess.Popen(command, env=self.env, stdout=subprocess.PIPE,
                                              stderr=subprocess.STDOUT, text=True, cwd=self.bench_db.data_dir)
            out, _ = self.sweep.communicate()
            code = self.sweep.returncode
            with self.lock:
                self.sweep = None
            if code == 0:
                return
            self.sweep_reruns += 1
            if ": skipped;" in out:  # the dead run's heartbeat is not stale yet
                time.sleep(1)
            elif code != -9:
                time.sleep(1)  # failed (e.g. the database restarted): again

    def fault(self, kind: str) -> None:
        fault = {"kind": kind, "at": time.monotonic(), "progress": safe_progress()}
        with self.lock:
            if kind == "kill_sweep" and (self.sweep is None or self.sweep.poll() is not None):
                kind = fault["kind"] = "kill_worker"  # between two sweeps: a worker instead
            if kind == "kill_sweep":
                self.sweep.kill()
            elif kind == "kill_worker":
                worker = self.random.choice(self.workers)
                worker.process.kill()
                worker.process.wait()
                self.restart_dead_workers()
            else:
                version = sorted(os.listdir("/etc/postgresql"))[-1]
                subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                               check=True, capture_output=True, timeout=120)
        self.faults.append(fault)

    def measure_recoveries(self, deadline: float) -> None:
        """For each fault, the seconds until the day's tables grew again."""
        pending = [f for f in self.faults if "recovery_seconds" not in f]
        while pending and time.monotonic() < deadline:
            now_progress = safe_progress()
            for fault in list(pending):
                if now_progress is not None and (fault["progress"] is None or now_progress > fault["progress"]):
                    fault["recovery_seconds"] = round(time.monotonic() - fault["at"], 2)
                    pending.remove(fault)
            time.sleep(0.1)


def faulter(day: Day, kills: int, restart: bool, stop: threading.Event, span: float) -> None:
    """K kills (and the restart) at random moments over roughly `span` seconds of the day."""
    plan = sorted([(day.random.uniform(0.05, 1.0) * span, day.random.choice(["kill_sweep", "kill_worker"]))
                   for _ in range(kills)] + ([(span * 0.4, "restart_postgresql")] if restart else []))
    started = time.monotonic()
    for offset, kind in plan:
        if stop.wait(max(0.0, started + offset - time.monotonic())):
            return
        day.fault(kind)
        day.measure_recoveries(time.monotonic() + 60)


def a_day_later() -> None:
    """The first charges ran in real time, so their retries are due a day from now: bring them due now
    (rather than run payment-retry --at tomorrow, which would stamp its webhooks and notices tomorrow too)."""
    from django.db import connections

    from cobrador.dunning.models import DunningInvoice

    DunningInvoice.objects.filter(status="scheduled", next_attempt_at__isnull=False).update(
        next_attempt_at=datetime.now(UTC) - timedelta(seconds=1))
    connections.close_all()


def reconciliation_due() -> None:
    """Payments a killed run left in flight: due to be asked about now (reconciliation waits 5 minutes,
    then an hour)."""
    from django.db import connections

    from cobrador.payments.models import Payment

    Payment.objects.filter(status__in=["processing", "unknown"]).update(
        next_reconcile_at=datetime.now(UTC) - timedelta(seconds=1))
    connections.close_all()


def decline_every_tenth_card() -> None:
    from cobrador.customers.models import PaymentMethod

    ids = list(PaymentMethod.objects.order_by("pk").values_list("pk", flat=True)[::10])
    PaymentMethod.objects.update(gateway_token="tok_sandbox_success")
    PaymentMethod.objects.filter(pk__in=ids).update(gateway_token="tok_sandbox_decline")


def wait_for_outboxes(day: Day, timeout: float) -> None:
    from django.db import connection

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        day.restart_dead_workers()
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM webhooks_webhookdelivery WHERE status = 'pending'")
            webhooks = cursor.fetchone()[0]
            cursor.execute("SELECT count(*) FROM notifications_notice WHERE status = 'pending'")
            notices = cursor.fetchone()[0]
        if not webhooks and not notices:
            return
        time.sleep(0.5)


INVARIANTS = {
    "invoice_duplicated": "SELECT count(*) FROM (SELECT subscription_id, period_start FROM invoicing_invoice "
                          "WHERE subscription_id IS NOT NULL GROUP BY subscription_id, period_start "
                          "HAVING count(*) > 1) d",
    "invoice_missing": "SELECT count(*) FROM subscriptions_subscription s WHERE NOT EXISTS (SELECT 1 FROM "
                       "invoicing_invoice i WHERE i.subscription_id = s.id AND i.period_start = %(day)s)",
    "invoice_number_gap": "SELECT count(*) FROM (SELECT organization_id FROM invoicing_invoice GROUP BY "
                          "organization_id HAVING max(number) <> count(*) OR count(DISTINCT number) <> count(*)) g",
    "invoice_paid_twice": "SELECT count(*) FROM (SELECT invoice_id FROM payments_payment WHERE status = 'succeeded' "
                          "GROUP BY invoice_id HAVING count(*) > 1) p",
    "charged_twice_at_provider": "SELECT count(*) FROM (SELECT reference FROM gateways_sandboxcharge GROUP BY "
                                 "reference HAVING count(*) > 1) c",
    "first_charge_doubled": "SELECT count(*) FROM (SELECT invoice_id FROM payments_payment WHERE attempt_number = 0 "
                            "GROUP BY invoice_id HAVING count(*) > 1) f",
    "open_invoice_never_charged": "SELECT count(*) FROM invoicing_invoice i WHERE i.status = 'open' AND "
                                  "i.amount_due > 0 AND NOT EXISTS (SELECT 1 FROM payments_payment p "
                                  "WHERE p.invoice_id = i.id)",
    "payment_in_flight": "SELECT count(*) FROM payments_payment WHERE status IN ('processing', 'unknown')",
    "failed_invoice_without_dunning": "SELECT count(*) FROM invoicing_invoice i WHERE i.status = 'open' AND "
                                      "EXISTS (SELECT 1 FROM payments_payment p WHERE p.invoice_id = i.id AND "
                                      "p.status = 'failed') AND NOT EXISTS (SELECT 1 FROM dunning_dunninginvoice d "
                                      "WHERE d.invoice_id = i.id)",
    "dunning_attempt_doubled": "SELECT count(*) FROM (SELECT invoice_id, attempt_number, method FROM "
                               "dunning_recoveryrecord GROUP BY invoice_id, attempt_number, method "
                               "HAVING count(*) > 1) r",
    "dunning_retry_missing": "SELECT count(*) FROM dunning_dunninginvoice d WHERE d.status = 'scheduled' AND "
                             "d.next_attempt_number = 1",
    "dunning_running": "SELECT count(*) FROM dunning_dunninginvoice WHERE status = 'running'",
    "event_without_delivery": "SELECT count(*) FROM events_event e WHERE NOT EXISTS (SELECT 1 FROM "
                              "webhooks_webhookdelivery w WHERE w.event_id = e.id)",
    "webhook_undelivered": "SELECT count(*) FROM webhooks_webhookdelivery WHERE status <> 'succeeded'",
    "notice_unsent": "SELECT count(*) FROM notifications_notice WHERE status NOT IN ('sent')",
    "run_left_running": "SELECT count(*) FROM jobs_jobrun WHERE status = 'running'",
}


def check_invariants() -> dict[str, int]:
    from django.db import connection

    day = DAY if connection.vendor == "postgresql" else DAY.strftime("%Y-%m-%d %H:%M:%S")
    result = {}
    with connection.cursor() as cursor:
        for name, sql in INVARIANTS.items():
            cursor.execute(sql.replace("%(day)s", "%s"), [day] if "%(day)s" in sql else [])
            result[name] = cursor.fetchone()[0]
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20000, help="subscriptions renewed and invoiced (default 20000)")
    parser.add_argument("--kills", type=int, default=6, help="kill -9 faults over the day (default 6)")
    parser.add_argument("--seed", type=int, default=15)
    add_database_argument(parser)
    args = parser.parse_args()

    receiver = ReceiverProcess(verify_every=2)  # every other delivery verified
    sink = SmtpSink()
    extra = {**JOB_ENV, **JOBS_OFF, "COBRADOR_EMAIL_URL": sink.url}
    try:
        with fresh_database(args.database, extra_env=extra) as bench_db:
            from django.db import connections

            from cobrador.core import clock

            started = time.monotonic()
            setup_billing_day(args.n)
            decline_every_tenth_card()
            from cobrador.webhooks.models import WebhookEndpoint

            endpoint = WebhookEndpoint.objects.get()
            WebhookEndpoint.objects.filter(pk=endpoint.pk).update(url=receiver.url)
            receiver.set_secret(endpoint.secret)
            clock.set(None)
            connections.close_all()
            setup_seconds = time.monotonic() - started
            restart = bench_db.vendor == "postgresql"

            day = Day(bench_db, {**bench_db.env}, args.seed)
            stop = threading.Event()
            # The faults fall over the expected length of the day (about 1 ms per subscription, at least 20 s).
            span = max(20.0, args.n / 1000.0)
            thread = threading.Thread(target=faulter, args=(day, args.kills, restart, stop, span), daemon=True)
            day_started = time.monotonic()
            thread.start()
            day.run_sweep("subscription-renewal", DAY + timedelta(minutes=5))
            day.run_sweep("invoice-generation", DAY + timedelta(hours=1))
            day.run_sweep("invoice-charging", DAY + timedelta(hours=1, minutes=5))
            a_day_later()
            day.run_sweep("payment-retry")
            thread.join()  # every planned fault happened
            stop.set()
            day.restart_dead_workers()
            # Rerun to completion after the last fault, then settle what was in flight.
            day.run_sweep("invoice-generation", DAY + timedelta(hours=1))
            day.run_sweep("invoice-charging", DAY + timedelta(hours=1, minutes=5))
            a_day_later()
            day.run_sweep("payment-retry")
            for _ in range(2):  # a charge that never reached the provider is failed at the second ask
                reconciliation_due()
                day.run_sweep("payment-reconciliation")
            # The first charges a killed worker left in flight were settled just now: those that failed opened
            # their dunning cases with the first retry due a day later. Bring it due too.
            a_day_later()
            day.run_sweep("payment-retry")
            wait_for_outboxes(day, timeout=max(300.0, args.n / 20))
            day.measure_recoveries(time.monotonic() + 30)
            day_seconds = time.monotonic() - day_started
            for worker in list(bench_db.workers):
                worker.stop()
            invariants = check_invariants()
            receiver_stats = receiver.stats()
            from cobrador.invoicing.models import Invoice
            from cobrador.notifications.models import Notice
            from cobrador.payments.models import Payment
            from cobrador.webhooks.models import WebhookDelivery

            totals = {"invoices": Invoice.objects.filter(period_start=DAY).count(),
                      "payments": Payment.objects.count(),
                      "payments_failed": Payment.objects.filter(status="failed").count(),
                      "webhook_deliveries": WebhookDelivery.objects.count(),
                      "notices_email": Notice.objects.filter(channel="email").count(),
                      "webhook_deliveries_by_status": dict(Counter(WebhookDelivery.objects.values_list("status",
                                                                                                       flat=True))),
                      "notices_by_channel_status": dict(Counter(
                          f"{c}:{s}" for c, s in Notice.objects.values_list("channel", "status"))),
                      "notice_errors": sorted(set(Notice.objects.exclude(last_error="").values_list(
                          "last_error", flat=True)))[:3]}
            vendor = bench_db.vendor
    finally:
        mail_stats = sink.stop()
        receiver.stop()

    faults = [{"kind": f["kind"], "recovery_seconds": f.get("recovery_seconds")} for f in day.faults]
    kills = [f for f in faults if f["kind"].startswith("kill")]
    restarts = [f for f in faults if f["kind"] == "restart_postgresql"]
    survived = all(f["recovery_seconds"] is not None for f in faults)
    violations = {name: count for name, count in invariants.items()}
    duplicates = {"webhooks": receiver_stats["count"] - receiver_stats["unique"],
                  "mails": mail_stats["received"] - mail_stats["unique_message_ids"]}
    missing_deliveries = {"webhooks": totals["webhook_deliveries"] - receiver_stats["unique"],
                          "mails": totals["notices_email"] - mail_stats["unique_message_ids"]}
    result = {
        "benchmark": "faults",
        "database": vendor,
        "n": args.n,
        "seed": args.seed,
        "setup_seconds": round(setup_seconds, 1),
        "day_seconds": round(day_seconds, 1),
        "kills_survived": f"{sum(f['recovery_seconds'] is not None for f in kills)}/{len(kills)}",
        "restarts_survived": f"{sum(f['recovery_seconds'] is not None for f in restarts)}/{len(restarts)}",
        "faults": faults,
        "recovery_seconds_max": max((f["recovery_seconds"] or 0 for f in faults), default=0),
        "sweep_reruns": day.sweep_reruns,
        "totals": totals,
        "invariant_violations": violations,
        "invariant_violations_total": sum(violations.values()),
        "duplicates_delivered": duplicates,
        "not_received": missing_deliveries,
        "webhook_signatures": {"verified": receiver_stats["verified"], "bad": receiver_stats["bad_signatures"]},
        # The ceiling of a fault run is the same day without faults: 0 violations, 0 reruns.
        "ceiling": {"invariant_violations_total": 0, "faults_survived": len(faults)},
        "ratio": round(sum(f["recovery_seconds"] is not None for f in faults) / len(faults), 3) if faults else 1.0,
        "meets_targets": (survived and sum(violations.values()) == 0 and missing_deliveries["webhooks"] <= 0
                          and missing_deliveries["mails"] <= 0 and receiver_stats["bad_signatures"] == 0),
    }
    print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
