"""What the console's home page shows: every job's health, the backlogs, the parked items and the last
failures, each with the admin list it links to. Reads only, a bounded number of indexed queries.

The health is jobs.health.job_health (the verdict of `cobrador jobs list`, /readyz and the job-watch
e-mails); the backlogs are ops.queries (what /metrics exports), so the three never disagree.
"""

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

from django.db.models import Count
from django.urls import reverse
from django_ox.models import OxTask

from cobrador.callbacks.models import GatewayCallback
from cobrador.dunning.models import DunningInvoice
from cobrador.invoicing.models import Invoice
from cobrador.jobs.health import job_health
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.nfe.models import ServiceInvoice
from cobrador.notifications.models import Notice
from cobrador.ops import queries
from cobrador.webhooks.models import WebhookDelivery

LAST_FAILURES = 10
# A run that ended like this is a failure for the operator to look at.
FAILED_RUN_STATUSES = ("failed", "partial", "abandoned", "interrupted")


def changelist(model, **filters) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(filters)}" if filters else url


def change_page(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


@dataclass(frozen=True)
class Line:
    """One figure of the page with the list that shows its rows."""

    label: str
    value: int
    url: str
    detail: str = ""
    alarm: bool = False  # shown highlighted: something is waiting on an operator or too long


def _age(seconds: float) -> str:
    if seconds <= 0:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"oldest {seconds / size:.0f} {unit}"
    return f"oldest {seconds:.0f} s"


def jobs(as_of: datetime) -> list[dict]:
    rows = []
    for health in job_health(as_of):
        rows.append({"health": health, "runs_url": changelist(JobRun, job_name=health.name),
                     "alarm": health.in_trouble})
    return rows


def backlogs(as_of: datetime) -> list[Line]:
    charges = queries.charge_queue(as_of)
    webhooks = queries.webhook_outbox(as_of)
    notices = queries.notice_outbox(as_of)
    nfse = queries.nfse_outbox(as_of)
    callbacks, callbacks_oldest = queries.callback_backlog(as_of)
    tasks, tasks_oldest = queries.task_queue(as_of)
    # An outbox whose oldest row waited over an hour is behind: the delivery loop is down or failing.
    behind = 3600
    return [
        # New invoices waiting to be charged: the workers' charge drainers take them within a second.
        Line("Invoices queued for charging", charges.pending, changelist(Invoice, status__exact="open"),
             _age(charges.oldest_pending_age), charges.oldest_pending_age > 600),
        Line("Webhook deliveries", webhooks.pending, changelist(WebhookDelivery, status__exact="pending"),
             f"{webhooks.due} due now {_age(webhooks.oldest_pending_age)}".strip(),
             webhooks.oldest_pending_age > behind),
        Line("Notices", notices.pending, changelist(Notice, status__exact="pending"),
             f"{notices.due} due now {_age(notices.oldest_pending_age)}".strip(), notices.oldest_pending_age > behind),
        Line("NFS-e", nfse.pending, changelist(ServiceInvoice),
             f"{nfse.due} due now {_age(nfse.oldest_pending_age)}".strip(), nfse.oldest_pending_age > behind),
        Line("Gateway callbacks", sum(callbacks.values()), changelist(GatewayCallback),
             ", ".join(f"{n} {status}" for status, n in callbacks.items() if n) or _age(callbacks_oldest),
             callbacks_oldest > behind),
        Line("Task queue", tasks["ready"], changelist(OxTask),
             f"{tasks['scheduled']} scheduled, {tasks['running']} running {_age(tasks_oldest)}".strip(),
             tasks_oldest > 600),
    ]


def parked() -> list[Line]:
    """Items no loop retries by itself: each waits for an operator to retry, replay or unpark it."""
    lines = [Line(f"Job items: {row['job_name']}", row["n"],
                  changelist(FailedItem, parked__exact=1, job_name=row["job_name"]), "skipped by every run", True)
             for row in FailedItem.objects.filter(parked=True).values("job_name").annotate(n=Count("id"))
             .order_by("job_name")]
    figures = [
        ("Webhook deliveries failed", WebhookDelivery.objects.filter(status="failed").count(),
         changelist(WebhookDelivery, status__exact="failed"), "replay them once the receiver is back"),
        ("Notices parked or failed", Notice.objects.filter(status__in=["parked", "failed"]).count(),
         changelist(Notice, status__in="parked,failed"), "send them again"),
        ("Callbacks failed for good", GatewayCallback.objects.filter(status="failed", next_attempt_at__isnull=True)
         .count(), changelist(GatewayCallback, status__exact="failed"),
         "process them again (the list also shows failed ones still retried)"),
        ("Dunning retries parked", DunningInvoice.objects.filter(status="failed").count(),
         changelist(DunningInvoice, status__exact="failed"), "retry them now"),
        ("NFS-e failed or blocked", ServiceInvoice.objects.filter(status__in=queries.NFSE_GIVEN_UP).count(),
         changelist(ServiceInvoice, status__in=",".join(queries.NFSE_GIVEN_UP)), "retry them"),
    ]
    lines += [Line(label, n, url, detail, n > 0) for label, n, url, detail in figures]
    return lines


def last_failures(limit: int = LAST_FAILURES) -> list[dict]:
    """The latest runs that failed or parked something, and the latest items that failed."""
    runs = (JobRun.objects.filter(status__in=FAILED_RUN_STATUSES).order_by("-started_at")
            .only("job_name", "status", "started_at", "finished_at", "items_failed", "error")[:limit])
    items = FailedItem.objects.order_by("-last_failed_at")[:limit]
    entries = [{"at": run.finished_at or run.started_at, "what": f"{run.job_name} run {run.status}",
                "detail": (run.error.strip().splitlines() or [f"{run.items_failed} item(s) failed"])[-1][:200],
                "url": change_page(run)} for run in runs]
    entries += [{"at": item.last_failed_at, "what": f"{item.job_name} item {item.item_key}"
                 + (" (parked)" if item.parked else f" (attempt {item.attempts})"),
                 "detail": (item.last_error.strip().splitlines() or [""])[-1][:200], "url": change_page(item)}
                for item in items]
    return sorted(entries, key=lambda e: e["at"], reverse=True)[:limit]


def home(as_of: datetime) -> dict:
    job_rows = jobs(as_of)
    return {"jobs": job_rows, "backlogs": backlogs(as_of), "parked": parked(),
            "last_failures": last_failures(), "as_of": as_of,
            "jobs_in_trouble": sum(1 for row in job_rows if row["alarm"])}
