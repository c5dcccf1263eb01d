"""Prometheus metrics.

Figures about the work (jobs, outboxes, callbacks, the task queue) are read from the database at scrape
time by `DatabaseCollector`, so every web process answers the same whichever one is scraped. The web
processes' own counters (answers by status class, request durations) live in prometheus-client's
multi-process files when PROMETHEUS_MULTIPROC_DIR is set (`cobrador web` sets it: granian runs several
worker processes), and are summed over them at scrape time.
"""

import os

from prometheus_client import REGISTRY as PROCESS_REGISTRY
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from cobrador.core import clock
from cobrador.ops import queries

http_responses = Counter("cobrador_http_responses", "Answers of the web server by status class",
                         ["status_class"])
http_request_duration = Histogram("cobrador_http_request_duration_seconds", "Time to answer a request",
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))


def _gauge(name: str, documentation: str, labels: list[str], values: dict) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for label_values, value in values.items():
        family.add_metric(list(label_values), value)
    return family


class DatabaseCollector:
    """Gauges read from the database at scrape time."""

    def collect(self):
        now = clock.now()
        jobs = queries.job_figures(now)
        yield _gauge("cobrador_job_runs_24h", "Runs started in the last 24 hours, by result", ["job", "status"],
                     {(name, status): n for name, f in jobs.items() for status, n in f.runs.items()})
        yield _gauge("cobrador_job_failed_runs_24h", "Runs in the last 24 hours that failed as a whole", ["job"],
                     {(name,): f.runs.get("failed", 0) for name, f in jobs.items()})
        yield _gauge("cobrador_job_items_done_24h", "Items the job's runs of the last 24 hours processed", ["job"],
                     {(name,): f.items_done for name, f in jobs.items()})
        yield _gauge("cobrador_job_items_failed_24h", "Item failures in the job's runs of the last 24 hours",
                     ["job"], {(name,): f.items_failed for name, f in jobs.items()})
        yield _gauge("cobrador_job_parked_items", "Items parked after repeated failures (skipped until retried)",
                     ["job"], {(name,): f.parked for name, f in jobs.items()})
        yield _gauge("cobrador_job_last_run_duration_seconds", "Duration of the job's last finished run", ["job"],
                     {(name,): f.last_duration for name, f in jobs.items() if f.last_duration is not None})
        yield _gauge("cobrador_job_last_success_timestamp_seconds", "When the job's last successful run ended",
                     ["job"], {(name,): f.last_success_at.timestamp() for name, f in jobs.items()
                               if f.last_success_at})
        yield _gauge("cobrador_job_seconds_since_last_success", "Seconds since the job's last successful run ended",
                     ["job"], {(name,): max(0.0, (now - f.last_success_at).total_seconds())
                               for name, f in jobs.items() if f.last_success_at})
        yield _gauge("cobrador_job_late", "1 when the job has had no successful run within two periods of its cron",
                     ["job"], {(name,): int(f.state == "late") for name, f in jobs.items()})
        yield _gauge("cobrador_job_stuck", "1 when a run of the job has run far past its usual time", ["job"],
                     {(name,): int(f.state == "stuck") for name, f in jobs.items()})

        outboxes = {"charges": queries.charge_queue(now), "webhooks": queries.webhook_outbox(now),
                    "notices": queries.notice_outbox(now), "nfse": queries.nfse_outbox(now)}
        yield _gauge("cobrador_outbox_pending", "Rows waiting to be sent", ["outbox"],
                     {(name,): f.pending for name, f in outboxes.items()})
        yield _gauge("cobrador_outbox_due", "Rows waiting to be sent that are due now", ["outbox"],
                     {(name,): f.due for name, f in outboxes.items()})
        yield _gauge("cobrador_outbox_oldest_pending_age_seconds", "Age of the oldest row waiting to be sent",
                     ["outbox"], {(name,): f.oldest_pending_age for name, f in outboxes.items()})
        yield _gauge("cobrador_outbox_given_up", "Rows no longer retried (webhook deliveries failed, notices "
                     "failed or parked, NFS-e failed or blocked)", ["outbox"],
                     {(name,): f.parked for name, f in outboxes.items()})

        yield _gauge("cobrador_webhook_deliveries", "Webhook deliveries finished in the last 24 hours and pending "
                     "ones already tried, by outcome and the status class of the last answer",
                     ["outcome", "status_class"], queries.webhook_outcomes(now))

        callbacks, oldest = queries.callback_backlog(now)
        yield _gauge("cobrador_callback_backlog", "Gateway callbacks waiting to be processed or retried", ["status"],
                     {(status,): n for status, n in callbacks.items()})
        yield _gauge("cobrador_callback_backlog_oldest_age_seconds", "Age of the oldest waiting callback", [],
                     {(): oldest})

        tasks, oldest = queries.task_queue(now)
        yield _gauge("cobrador_task_queue", "Tasks in the queue: ready (due now), scheduled (later), running",
                     ["state"], {(state,): n for state, n in tasks.items()})
        yield _gauge("cobrador_task_queue_oldest_ready_age_seconds", "How long the oldest due task has waited",
                     [], {(): oldest})


def exposition() -> bytes:
    """The whole text exposition: the database's gauges and the web processes' counters."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
        return generate_latest(registry)
    return generate_latest(registry) + generate_latest(PROCESS_REGISTRY)
