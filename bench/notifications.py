"""Notification e-mail benchmark: notices e-mailed per second against a raw SMTP loop.

    python bench/notifications.py                       # SQLite in a temporary directory
    python bench/notifications.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench_notif

1. Ceiling: the same messages (rendered by the real pipeline, then rolled back) sent by a raw smtplib
   loop over ONE connection to the SMTP sink (aiosmtpd in its own process, tests/fakes/smtp.py).
   Measured before and after the achieved run; the faster of the two is the ceiling.
2. Achieved: --notices invoice_created notices written through `enqueue_notices` in transactions of
   --batch-size and e-mailed by real `cobrador worker` processes (the outbox drainer: claim 200, render,
   send over one connection, record). mails/s = notices / (first commit -> last notice recorded as sent).
   A fresh sink counts what arrived and checks every Message-ID arrived once.

Prints one JSON object. A benchmark, not a timed test: the target is reported, never asserted.
"""

import argparse
import json
import os
import smtplib
import subprocess
import sys
import time
from datetime import date, timedelta

from _common import (
    REPO,
    add_database_argument,
    fresh_database,
    own_peak_rss_bytes,
    print_json,
    start_worker,
    wait_until,
)

TARGET_RATIO = 0.3


class SinkProcess:
    """The aiosmtpd sink in its own process, so it does not share a GIL with the sender."""

    def __init__(self):
        self.process = subprocess.Popen([sys.executable, str(REPO / "tests" / "fakes" / "smtp.py")],
                                        stdout=subprocess.PIPE, text=True, cwd=REPO,
                                        env={**os.environ, "PYTHONPATH": str(REPO)})
        self.port = int(self.process.stdout.readline())
        self.url = f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> dict:
        self.process.terminate()
        stats = json.loads(self.process.stdout.readline())
        self.process.wait(timeout=30)
        return stats


def setup(accounts: int):
    from django.db import transaction

    from cobrador.core import clock
    from cobrador.customers.models import BillingAccount
    from cobrador.notifications import registry
    from cobrador.notifications.models import NotificationOptOut
    from cobrador.organizations.services import create_organization

    now = clock.now()
    with transaction.atomic():
        organization = create_organization(name="Bench Ltda", mode="test", billing_email="billing@bench.test")
        rows = BillingAccount.objects.bulk_create(
            BillingAccount(organization=organization, name=f"Cliente {i:05d}", email=f"cliente{i}@bench.test",
                           locale="pt-BR" if i % 2 else "en", created_at=now, updated_at=now)
            for i in range(accounts))
        # E-mail only: the benchmark measures mail, so the in-app and webhook channels are switched off.
        NotificationOptOut.objects.bulk_create(
            NotificationOptOut(organization=organization, account=a, type=t, channel="in_app", created_at=now)
            for a in rows for t in registry.ACCOUNT_TYPES)
    return organization, list(BillingAccount.objects.filter(organization=organization).order_by("pk"))


def drafts(organization, accounts, count: int, first: int = 0) -> list:
    from cobrador.notifications.contexts import invoice_context
    from cobrador.notifications.services import NoticeDraft

    due = date(2026, 3, 10)
    result = []
    for n in range(first, first + count):
        account = accounts[n % len(accounts)]
        invoice = {"id": f"in_bench{n:08d}", "number": 1000 + n, "total": 19900 + n, "amount_due": 19900 + n,
                   "currency": "BRL", "due_date": (due + timedelta(days=n % 28)).isoformat(),
                   "url": f"https://billing.bench.test/invoices/in_bench{n:08d}"}
        context = {"invoice": invoice_context(invoice, account.locale, organization.timezone)}
        result.append(NoticeDraft(organization=organization, type="invoice_created", key=invoice["id"],
                                  context=context, account=account, link=context["invoice"]["url"]))
    return result


def enqueue(organization, accounts, count: int, first: int = 0, batch_size: int = 500) -> None:
    """Write the notices as business transactions would: `batch_size` per transaction."""
    from django.db import transaction

    from cobrador.notifications.services import enqueue_notices

    for start in range(first, first + count, batch_size):
        with transaction.atomic():
            enqueue_notices(drafts(organization, accounts, min(batch_size, first + count - start), start))


def build_messages(organization, accounts, count: int) -> list[tuple[str, str, bytes]]:
    """(from, to, bytes) of the very messages the achieved run sends, made by the real pipeline."""
    import email.policy

    from django.db import transaction

    from cobrador.notifications.delivery import _from_address, prepare_batch
    from cobrador.notifications.models import Notice

    messages = []
    with transaction.atomic():
        enqueue(organization, accounts, count, batch_size=count)
        notices = list(Notice.objects.filter(organization=organization).select_related("organization", "account")
                       .order_by("pk"))
        for start in range(0, len(notices), 200):
            for notice, mail in prepare_batch(notices[start:start + 200]).emails:
                messages.append((_from_address(), notice.recipient,
                                 mail.message(policy=email.policy.SMTP).as_bytes()))
        transaction.set_rollback(True)
    return messages


def measure_ceiling(messages) -> dict:
    sink = SinkProcess()
    try:
        connection = smtplib.SMTP("127.0.0.1", sink.port, timeout=30)
        started = time.time()
        for sender, recipient, data in messages:
            connection.sendmail(sender, [recipient], data)
        seconds = time.time() - started
        connection.quit()
    finally:
        stats = sink.stop()
    return {"mails_per_second": round(len(messages) / seconds, 1), "seconds": round(seconds, 3), **stats,
            "average_message_bytes": round(sum(len(m[2]) for m in messages) / len(messages))}


def sent_count() -> int:
    from cobrador.notifications.models import Notice

    return Notice.objects.filter(status="sent").count()


def measure_achieved(bench_db, organization, accounts, count: int, workers: int, batch_size: int) -> dict:
    from django.db.models import Max

    from cobrador.notifications.models import Notice

    sink = SinkProcess()
    try:
        env = {"COBRADOR_EMAIL_URL": sink.url, "COBRADOR_EMAIL_FROM": "billing@cobrador.test"}
        started_workers = [start_worker(bench_db, env=env) for _ in range(workers)]
        enqueue(organization, accounts, 1, first=10_000_000)  # warm-up: ready once one mail has gone out

        def warmed_up():
            for worker in started_workers:
                worker.check_alive()
            return sent_count() >= 1

        wait_until(warmed_up, timeout=120, what="the worker to send a first mail")
        started = time.time()
        enqueue(organization, accounts, count, batch_size=batch_size)
        committed = time.time()
        wait_until(lambda: sent_count() >= count + 1, timeout=1800, interval=0.2, what=f"{count} mails")
        last_sent = Notice.objects.exclude(dedupe_key__startswith="invoice_created:in_bench10000000:").aggregate(
            Max("sent_at"))["sent_at__max"].timestamp()
        seconds = last_sent - started
        rss = max(w.sample_rss() for w in started_workers)
        failed = Notice.objects.exclude(status="sent").count()
        for worker in started_workers:
            worker.stop()
    finally:
        stats = sink.stop()
    return {"mails_per_second": round(count / seconds, 1), "seconds": round(seconds, 3),
            "commit_seconds": round(committed - started, 3), "not_sent": failed,
            "received": stats["received"] - 1, "unique_message_ids": stats["unique_message_ids"] - 1,
            "worker_peak_rss_mb": round(rss / 2**20, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--notices", type=int, default=20_000, help="notices to e-mail (default 20000)")
    parser.add_argument("--accounts", type=int, default=2_000, help="billing accounts they go to (default 2000)")
    parser.add_argument("--workers", type=int, default=1, help="`cobrador worker` processes (default 1)")
    parser.add_argument("--batch-size", type=int, default=500, help="notices per committed transaction (500)")
    args = parser.parse_args()

    with fresh_database(args.database, extra_env={"COBRADOR_LOG_LEVEL": "WARNING"}) as bench_db:
        organization, accounts = setup(args.accounts)
        messages = build_messages(organization, accounts, args.notices)
        # The ceiling is measured before and after, and the better run counts: on a shared machine the
        # load changes during a run, and the ratio should not flatter the pipeline.
        ceilings = [measure_ceiling(messages)]
        achieved = measure_achieved(bench_db, organization, accounts, args.notices, args.workers, args.batch_size)
        ceilings.append(measure_ceiling(messages))
        ceiling = max(ceilings, key=lambda c: c["mails_per_second"])
        ratio = achieved["mails_per_second"] / ceiling["mails_per_second"]
        print_json({
            "benchmark": "notifications",
            "database": bench_db.vendor,
            "notices": args.notices,
            "workers": args.workers,
            "cpus": os.cpu_count(),
            "mails_per_second": achieved["mails_per_second"],
            "ceiling_mails_per_second": ceiling["mails_per_second"],
            "ratio_to_ceiling": round(ratio, 3),
            "achieved": achieved,
            "ceiling": ceiling,
            "ceiling_runs_mails_per_second": [c["mails_per_second"] for c in ceilings],
            "batch_size": args.batch_size,
            "load_average_1min": round(os.getloadavg()[0], 2),
            "bench_peak_rss_mb": round(own_peak_rss_bytes() / 2**20, 1),
            "targets": {"ratio_to_ceiling": f">= {TARGET_RATIO}"},
            "meets_targets": ratio >= TARGET_RATIO and achieved["received"] == args.notices
                             and achieved["unique_message_ids"] == args.notices and not achieved["not_sent"],
        })
    return 0


if __name__ == "__main__":
    sys.exit(main())
