"""Read-only figures for /metrics, each a few indexed queries, whatever the size of the history."""

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db.models import Count, Min, Q, Sum
from django_ox.models import OxTask

from cobrador.callbacks.models import GatewayCallback
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.health import job_health
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.nfe.models import ServiceInvoice
from cobrador.notifications.models import Notice
from cobrador.payments.models import ChargeQueueEntry
from cobrador.webhooks.models import WebhookDelivery

WINDOW = timedelta(hours=24)


def _age(as_of: datetime, since: datetime | None) -> float:
    return max(0.0, (as_of - since).total_seconds()) if since else 0.0


@dataclass
class JobFigures:
    runs: dict  # status -> runs started in the window
    items_done: int  # in the window
    items_failed: int
    parked: int  # items parked now
    last_status: str | None
    last_duration: float | None
    last_success_at: datetime | None
    state: str  # jobs.health: ok | late | stuck | never | off

    @property
    def late(self) -> bool:
        return self.state == "late"


def job_figures(as_of: datetime) -> dict[str, JobFigures]:
    since = as_of - WINDOW
    runs: dict[str, dict] = defaultdict(dict)
    items: dict[str, tuple[int, int]] = defaultdict(lambda: (0, 0))
    rows = (JobRun.objects.filter(started_at__gte=since).values("job_name", "status")
            .annotate(n=Count("id"), done=Sum("items_done"), failed=Sum("items_failed")))
    for row in rows:
        runs[row["job_name"]][row["status"]] = row["n"]
        done, failed = items[row["job_name"]]
        items[row["job_name"]] = (done + (row["done"] or 0), failed + (row["failed"] or 0))
    parked = dict(FailedItem.objects.filter(parked=True).values("job_name").annotate(n=Count("id"))
                  .values_list("job_name", "n"))
    states = {health.name: health.state for health in job_health(as_of)}
    figures = {}
    for name in JOBS:
        # The (job_name, -started_at) index gives the newest runs first.
        last = JobRun.objects.filter(job_name=name).order_by("-started_at").only(
            "status", "started_at", "finished_at").first()
        last_success_at = (JobRun.objects.filter(job_name=name, status__in=["succeeded", "partial"])
                           .order_by("-started_at").values_list("finished_at", flat=True).first())
        figures[name] = JobFigures(
            runs=runs.get(name, {}), items_done=items[name][0], items_failed=items[name][1],
            parked=parked.get(name, 0),
            last_status=last.status if last else None,
            last_duration=(last.finished_at - last.started_at).total_seconds()
            if last and last.finished_at else None,
            last_success_at=last_success_at, state=states[name])
    return figures


@dataclass
class OutboxFigures:
    pending: int
    due: int  # pending and due now
    oldest_pending_age: float  # seconds since the oldest pending row was written
    parked: int  # gave up: kept for an operator to look at or replay


def webhook_outbox(as_of: datetime) -> OutboxFigures:
    pending = WebhookDelivery.objects.filter(status="pending").aggregate(
        n=Count("id"), due=Count("id", filter=Q(next_attempt_at__lte=as_of)), oldest=Min("created_at"))
    return OutboxFigures(pending=pending["n"], due=pending["due"], oldest_pending_age=_age(as_of, pending["oldest"]),
                         parked=WebhookDelivery.objects.filter(status="failed").count())


def notice_outbox(as_of: datetime) -> OutboxFigures:
    pending = Notice.objects.filter(status="pending").aggregate(
        n=Count("id"), due=Count("id", filter=Q(next_attempt_at__lte=as_of)), oldest=Min("created_at"))
    return OutboxFigures(pending=pending["n"], due=pending["due"], oldest_pending_age=_age(as_of, pending["oldest"]),
                         parked=Notice.objects.filter(status__in=["parked", "failed"]).count())


def charge_queue(as_of: datetime) -> OutboxFigures:
    """Entries of invoices waiting for a worker's charge drainer (each a transaction's invoices): all due
    at once, and none given up (the invoice-charging job catches what no drainer took)."""
    pending = ChargeQueueEntry.objects.aggregate(n=Count("id"), oldest=Min("created_at"))
    return OutboxFigures(pending=pending["n"], due=pending["n"], oldest_pending_age=_age(as_of, pending["oldest"]),
                         parked=0)


NFSE_WAITING = ("pending", "processing", "cancel_pending")
NFSE_GIVEN_UP = ("failed", "blocked", "cancel_failed")


def nfse_outbox(as_of: datetime) -> OutboxFigures:
    """Service invoices (NFS-e) still to be issued or canceled at NFe.io, and those that need an operator."""
    pending = ServiceInvoice.objects.filter(status__in=NFSE_WAITING).aggregate(
        n=Count("id"), due=Count("id", filter=Q(next_attempt_at__lte=as_of)), oldest=Min("created_at"))
    return OutboxFigures(pending=pending["n"], due=pending["due"], oldest_pending_age=_age(as_of, pending["oldest"]),
                         parked=ServiceInvoice.objects.filter(status__in=NFSE_GIVEN_UP).count())


def status_class(code: int | None) -> str:
    return f"{code // 100}xx" if code else "no_response"


def webhook_outcomes(as_of: datetime) -> dict[tuple[str, str], int]:
    """(outcome, status class of the last answer) -> deliveries: finished in the window (succeeded,
    failed), and pending ones that have been tried (retrying)."""
    outcomes: dict[tuple[str, str], int] = defaultdict(int)
    finished = (WebhookDelivery.objects.filter(finished_at__gte=as_of - WINDOW)
                .values("status", "last_status_code").annotate(n=Count("id")))
    retrying = (WebhookDelivery.objects.filter(status="pending", attempt_count__gt=0)
                .values("status", "last_status_code").annotate(n=Count("id")))
    for row in finished:
        outcomes[(row["status"], status_class(row["last_status_code"]))] += row["n"]
    for row in retrying:
        outcomes[("retrying", status_class(row["last_status_code"]))] += row["n"]
    return dict(outcomes)


CALLBACK_BACKLOG = ["received", "processing", "failed"]


def callback_backlog(as_of: datetime) -> tuple[dict[str, int], float]:
    """Callbacks waiting to be processed or retried, by status, and the age of the oldest."""
    waiting = Q(status__in=["received", "processing"]) | Q(status="failed", next_attempt_at__isnull=False)
    rows = GatewayCallback.objects.filter(waiting).values("status").annotate(n=Count("id"), oldest=Min("received_at"))
    counts = dict.fromkeys(CALLBACK_BACKLOG, 0)
    oldest = None
    for row in rows:
        counts[row["status"]] = row["n"]
        oldest = row["oldest"] if oldest is None else min(oldest, row["oldest"])
    return counts, _age(as_of, oldest)


def task_queue(as_of: datetime) -> tuple[dict[str, int], float]:
    """The django-ox queue: ready (due now), scheduled (ready later), running; the oldest due task's wait."""
    figures = OxTask.objects.filter(status__in=[OxTask.Status.READY, OxTask.Status.RUNNING]).aggregate(
        ready=Count("id", filter=Q(status=OxTask.Status.READY) & (Q(run_after__isnull=True) | Q(run_after__lte=as_of))),
        scheduled=Count("id", filter=Q(status=OxTask.Status.READY, run_after__gt=as_of)),
        running=Count("id", filter=Q(status=OxTask.Status.RUNNING)),
        oldest=Min("enqueued_at", filter=Q(status=OxTask.Status.READY)
                   & (Q(run_after__isnull=True) | Q(run_after__lte=as_of))))
    oldest = figures.pop("oldest")
    return figures, _age(as_of, oldest)
