"""Webhook delivery benchmark: throughput against its ceiling, and commit-to-receipt lag.

    python bench/webhooks.py                       # SQLite in a temporary directory
    python bench/webhooks.py --database postgres://postgres@127.0.0.1:5432/cobrador_bench

1. Ceiling: a raw loop of the same signed POSTs (same body sizes, standardwebhooks signing, the
   delivery module's own httpx client and WEBHOOK_CONCURRENCY sender threads) to the same receiver,
   in two halves run before and after step 2.
2. Achieved: --events events committed in batches through record_events (so webhook delivery rows
   are written by the real sink), delivered by real `cobrador worker` processes;
   deliveries/s = events / (first commit -> last receipt).
3. Lag: one event per transaction at a steady --lag-rate for --lag-seconds with the worker running
   (--lag-committers threads share the schedule); lag = receipt time at the receiver - commit time
   (both time.time() on this machine).

The receiver is a small asyncio HTTP/1.1 keep-alive server in its own process (bench/_common.py) that
checks every 50th signature with the standardwebhooks package. Besides deliveries/s against the
ceiling, the JSON has the worker's CPU per delivery against the ceiling client's CPU per request, a
figure that other load on the machine changes much less. A benchmark, not a timed test: the targets
are reported, never asserted.
"""

import argparse
import os
import sys
import threading
import time

from _common import (
    ReceiverProcess,
    add_database_argument,
    fresh_database,
    own_peak_rss_bytes,
    percentile,
    print_json,
    start_worker,
    wait_until,
)

TARGET_RATIO = 0.2
TARGET_P99_LAG_SECONDS = {"postgresql": 1.0, "sqlite": 1.5}
# A type that no other sink (dunning, notifications) reacts to: the committing side writes the event
# and its webhook delivery rows, nothing else, so the figures are about webhooks.
EVENT_TYPE = "subscription.updated"


def event_payload(n: int) -> dict:
    """About 800 bytes of JSON shaped like a subscription as the API returns it."""
    return {
        "id": f"sub_bench{n:010d}", "object": "subscription", "status": "active",
        "billing_account": "ba_bench0000000001", "plan": "plan_bench000000001", "coupon": "BOASVINDAS10",
        "quantity": 1, "currency": "BRL", "unit_amount": 19900, "interval": "month", "interval_count": 1,
        "trial_start": None, "trial_end": None, "auto_renew": True, "cancel_at_period_end": False,
        "current_period_start": "2026-03-01T00:00:00Z", "current_period_end": "2026-04-01T00:00:00Z",
        "canceled_at": None, "ended_at": None, "paused_at": None, "resumes_at": None,
        "payment_method": "pm_bench0000000001", "collection_method": "charge_automatically",
        "metadata": {"source": "bench", "sequence": n, "crm_id": f"crm-{n:08d}"},
        "created_at": "2026-03-01T00:00:00Z", "updated_at": "2026-03-02T10:11:12Z",
    }


def setup_endpoint(receiver_url: str):
    from django.db import transaction

    from cobrador.organizations.services import create_organization
    from cobrador.webhooks.services import create_endpoint

    with transaction.atomic():
        organization = create_organization(name="Bench", mode="test", billing_email="bench@example.test")
        endpoint = create_endpoint(organization=organization, url=receiver_url, enabled_events=["*"])
    return organization, endpoint


def ceiling_messages(count: int) -> list[tuple[str, bytes]]:
    """(webhook-id, body) pairs built exactly as the delivery path builds them from events."""
    import json

    from django.core.serializers.json import DjangoJSONEncoder

    from cobrador.core import clock
    from cobrador.core.ids import new_public_id
    from cobrador.events.models import Event
    from cobrador.webhooks.delivery import payload_bytes

    now = clock.now()
    messages = []
    for n in range(count):
        data = json.loads(json.dumps(event_payload(n), cls=DjangoJSONEncoder))  # as record_events stores it
        event = Event(public_id=new_public_id("evt"), type=EVENT_TYPE, data=data, created_at=now)
        messages.append((event.public_id, payload_bytes(event)))
    return messages


def measure_ceiling(receiver: ReceiverProcess, secret: str, messages: list[tuple[str, bytes]],
                    concurrency: int) -> dict:
    """The same signed POSTs through the same client and concurrency, with no database in the way."""
    from cobrador.webhooks.delivery import http_client, signed_headers

    client = http_client()
    pending = iter(messages)
    lock = threading.Lock()
    failures = []

    def send_loop():
        while True:
            with lock:
                message = next(pending, None)
            if message is None:
                return
            msg_id, body = message
            response = client.post(receiver.url, content=body, headers=signed_headers(msg_id, body, [secret]))
            if not 200 <= response.status_code < 300:
                failures.append(response.status_code)

    receiver.reset()
    started, cpu_started = time.time(), time.process_time()
    threads = [threading.Thread(target=send_loop) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    cpu = time.process_time() - cpu_started
    stats = receiver.stats()
    return {"received": stats["unique"], "seconds": stats["last_at"] - started, "cpu_seconds": cpu,
            "failures": len(failures)}


def combine_ceilings(runs: list[dict], body_bytes: int) -> dict:
    received = sum(r["received"] for r in runs)
    seconds = sum(r["seconds"] for r in runs)
    return {"deliveries_per_second": round(received / seconds, 1), "seconds": round(seconds, 3),
            "runs_per_second": [round(r["received"] / r["seconds"], 1) for r in runs],
            "client_cpu_ms_per_request": round(sum(r["cpu_seconds"] for r in runs) / received * 1000, 3),
            "received": received, "failures": sum(r["failures"] for r in runs), "body_bytes": body_bytes}


def commit_events(organization, count: int, batch_size: int, first: int = 0) -> list:
    from django.db import transaction

    from cobrador.events.services import EventDraft, record_events

    events = []
    for start in range(first, first + count, batch_size):
        drafts = [EventDraft(organization, EVENT_TYPE, event_payload(n))
                  for n in range(start, min(start + batch_size, first + count))]
        with transaction.atomic():
            events += record_events(drafts)
    return events


def succeeded_deliveries() -> int:
    from cobrador.webhooks.models import WebhookDelivery

    return WebhookDelivery.objects.filter(status="succeeded").count()


def measure_achieved(receiver: ReceiverProcess, workers: list, organization, count: int, batch_size: int) -> dict:
    receiver.reset()
    already_succeeded = succeeded_deliveries()
    worker_cpu = sum(w.cpu_seconds() for w in workers)
    started = time.time()
    commit_events(organization, count, batch_size, first=1_000_000)
    committed = time.time()
    wait_until(lambda: receiver.stats()["unique"] >= count, timeout=600, interval=0.1,
               what=f"{count} deliveries")
    stats = receiver.stats()
    seconds = stats["last_at"] - started
    # The receipts are in; the worker records the outcomes right after. Check every row says so.
    wait_until(lambda: succeeded_deliveries() - already_succeeded >= count, timeout=120, interval=0.2,
               what="every delivery to be recorded as succeeded")
    worker_cpu = sum(w.cpu_seconds() for w in workers) - worker_cpu
    return {"deliveries_per_second": round(count / seconds, 1), "seconds": round(seconds, 3),
            "worker_cpu_ms_per_delivery": round(worker_cpu / count * 1000, 3),
            "commit_seconds": round(committed - started, 3), "received": stats["unique"],
            "duplicates": stats["count"] - stats["unique"],
            "recorded_succeeded": succeeded_deliveries() - already_succeeded}


def measure_lag(receiver: ReceiverProcess, organization, seconds: float, rate: float, committers: int) -> dict:
    """One event per transaction on a fixed schedule of `rate` a second. A few committing threads share
    the schedule, so one slow commit does not hold back the ones after it."""
    from django.db import connection, transaction

    from cobrador.events.services import EventDraft, record_events

    receiver.reset()
    committed_at: dict[str, float] = {}
    total = int(seconds * rate)
    schedule = iter(range(total))
    lock = threading.Lock()

    def commit_on_schedule():
        try:
            while True:
                with lock:
                    n = next(schedule, None)
                if n is None:
                    return
                delay = start + n / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with transaction.atomic():
                    (event,) = record_events([EventDraft(organization, EVENT_TYPE, event_payload(2_000_000 + n))])
                committed_at[event.public_id] = time.time()
        finally:
            connection.close()

    threads = [threading.Thread(target=commit_on_schedule) for _ in range(committers)]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    achieved_rate = total / (time.monotonic() - start)
    try:
        wait_until(lambda: receiver.stats()["unique"] >= total, timeout=60, interval=0.1,
                   what=f"{total} lag-run deliveries")
    except TimeoutError:
        pass  # reported as missing below
    first_receipt: dict[str, float] = {}
    for webhook_id, at in receiver.receipts():
        first_receipt.setdefault(webhook_id, at)
    lags = [first_receipt[i] - t for i, t in committed_at.items() if i in first_receipt]
    return {"events": total, "commit_rate_per_second": round(achieved_rate, 1), "committers": committers,
            "p50_ms": round(percentile(lags, 50) * 1000, 1), "p99_ms": round(percentile(lags, 99) * 1000, 1),
            "max_ms": round(max(lags) * 1000, 1), "missing": total - len(lags)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_database_argument(parser)
    parser.add_argument("--events", type=int, default=20_000, help="events for the throughput run (default 20000)")
    parser.add_argument("--batch-size", type=int, default=500, help="events per committed transaction (500)")
    parser.add_argument("--lag-seconds", type=float, default=20.0, help="length of the lag run (default 20)")
    parser.add_argument("--lag-rate", type=float, default=100.0, help="events per second in the lag run (100)")
    parser.add_argument("--lag-committers", type=int, default=2,
                        help="threads sharing the lag run's commit schedule (default 2)")
    parser.add_argument("--workers", type=int, default=1, help="`cobrador worker` processes (default 1)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="webhook senders per worker and in the ceiling loop (default: the setting)")
    args = parser.parse_args()

    extra_env = {"COBRADOR_WEBHOOK_ALLOW_PRIVATE": "1"}
    if args.concurrency:
        extra_env["COBRADOR_WEBHOOK_CONCURRENCY"] = str(args.concurrency)
    load_at_start = os.getloadavg()[0]
    receiver = ReceiverProcess()
    try:
        with fresh_database(args.database, extra_env=extra_env) as bench_db:
            from django.conf import settings

            organization, endpoint = setup_endpoint(receiver.url)
            receiver.set_secret(endpoint.secret)
            concurrency = settings.WEBHOOK_CONCURRENCY
            # The ceiling runs in two halves, before and after the achieved run, so a change in the
            # machine's load during the run weighs on both figures alike.
            messages = ceiling_messages(args.events)
            half = len(messages) // 2
            ceilings = [measure_ceiling(receiver, endpoint.secret, messages[:half], concurrency)]

            workers = [start_worker(bench_db) for _ in range(args.workers)]
            # Warm up: the workers are ready once one event has gone all the way through.
            receiver.reset()
            commit_events(organization, 1, 1)

            def first_event_delivered():
                for worker in workers:
                    worker.check_alive()  # fail fast, with its log, if a worker did not start
                return receiver.stats()["unique"] >= 1

            wait_until(first_event_delivered, timeout=120, what="the worker to deliver a first event")
            wait_until(lambda: succeeded_deliveries() >= 1, timeout=60, what="the first delivery to be recorded")
            achieved = measure_achieved(receiver, workers, organization, args.events, args.batch_size)
            for worker in workers:
                worker.check_alive()
                worker.sample_rss()
            ceilings.append(measure_ceiling(receiver, endpoint.secret, messages[half:], concurrency))
            ceiling = combine_ceilings(ceilings, len(messages[0][1]))
            lag = measure_lag(receiver, organization, args.lag_seconds, args.lag_rate, args.lag_committers)
            signatures = receiver.stats()
            worker_rss = max(w.sample_rss() for w in workers)

            ratio = achieved["deliveries_per_second"] / ceiling["deliveries_per_second"]
            p99_target = TARGET_P99_LAG_SECONDS[bench_db.vendor]
            print_json({
                "benchmark": "webhooks",
                "database": bench_db.vendor,
                "events": args.events,
                "workers": args.workers,
                "concurrency": concurrency,
                "batch_size": args.batch_size,
                "cpus": os.cpu_count(),
                # Other processes on the machine weigh on every figure: the 1-minute load at start and end.
                "load_average": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
                "deliveries_per_second": achieved["deliveries_per_second"],
                "ceiling_deliveries_per_second": ceiling["deliveries_per_second"],
                "ratio_to_ceiling": round(ratio, 3),
                # Load-independent view of the same: client CPU per raw POST / worker CPU per delivery.
                "cpu_ratio_to_ceiling": round(ceiling["client_cpu_ms_per_request"]
                                              / achieved["worker_cpu_ms_per_delivery"], 3),
                "lag_p50_ms": lag["p50_ms"],
                "lag_p99_ms": lag["p99_ms"],
                "achieved": achieved,
                "ceiling": ceiling,
                "lag": lag,
                "signatures_checked": {"verified": signatures["verified"], "bad": signatures["bad_signatures"]},
                "peak_rss_mb": {"worker": round(worker_rss / 2**20, 1),
                                "receiver": round(receiver.peak_rss() / 2**20, 1),
                                "bench": round(own_peak_rss_bytes() / 2**20, 1)},
                "targets": {"ratio_to_ceiling": f">= {TARGET_RATIO} (aim 0.4)",
                            "lag_p99_ms": f"<= {p99_target * 1000:.0f}"},
                "meets_targets": ratio >= TARGET_RATIO and lag["p99_ms"] <= p99_target * 1000 and not lag["missing"],
            })
    finally:
        receiver.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
