"""Nothing silent: each job's health from its cron and its runs, and one e-mail to the operators per
incident and one when it recovers.

`job_health(as_of)` is what `cobrador jobs list`, the admin and the readiness probe read. Per job:

* `off`: its schedule is switched off (COBRADOR_CRON_<JOB>=off);
* `stuck`: a run is alive (fresh heartbeat) but has run far past its usual time: more than
  STUCK_FACTOR times its typical duration, and at least STUCK_FLOOR (STUCK_UNKNOWN while no run has
  finished to say what is usual);
* `late`: no successful run (an empty check counts) within two periods of its cron, plus a slack of one
  period up to LATE_SLACK (a job every minute: 3 minutes; a daily job: 2 days and 5 minutes);
* `never`: no run has ever succeeded (a new installation: not an incident);
* `ok` otherwise.

The period is the gap between the cron's two latest ticks at `as_of`. The `job-watch` job (every five
minutes) opens an incident when a job turns late or stuck and closes it when it is ok again, in one
transaction with an OpsAlert row per change (unique per job, kind and incident, so a rerun or a second
worker adds none); the rows are sent after commit to settings.OPS_EMAIL through the default mailer,
with a stable Message-ID. Without COBRADOR_OPS_EMAIL incidents are tracked but nobody is mailed.
"""

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import parseaddr

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, transaction
from django.db.models import F, Max
from django_ox.cron import CronExpression

from cobrador.core import clock
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import JobRun, JobState, OpsAlert

logger = logging.getLogger(__name__)

STUCK_FACTOR = 10
STUCK_FLOOR = timedelta(minutes=15)
STUCK_UNKNOWN = timedelta(hours=1)
LATE_SLACK = timedelta(minutes=5)
STATES = ("ok", "late", "stuck", "never", "off")
# The states that are an incident: an e-mail, /readyz not ready, highlighted in the console. `never` is a
# new installation and `off` a schedule switched off on purpose, neither an incident.
TROUBLE = ("late", "stuck")


@dataclass(frozen=True)
class JobHealth:
    name: str
    state: str  # ok | late | stuck | never | off
    cron: str | None
    period: timedelta | None
    last_success_at: datetime | None
    last_run_at: datetime | None  # the latest run or empty check
    running_since: datetime | None
    reason: str

    @property
    def in_trouble(self) -> bool:
        return self.state in TROUBLE

    def as_dict(self) -> dict:
        return {"name": self.name, "state": self.state, "cron": self.cron,
                "period_seconds": self.period.total_seconds() if self.period else None,
                "last_success_at": self.last_success_at, "last_run_at": self.last_run_at,
                "running_since": self.running_since, "reason": self.reason}


def cron_period(cron: str, as_of: datetime) -> timedelta:
    """The gap between the cron's two latest ticks at `as_of` (UTC)."""
    expression = CronExpression(cron)
    latest = expression.previous(as_of.astimezone(UTC).replace(tzinfo=None))
    return latest - expression.previous(latest - timedelta(minutes=1))


def _late_after(period: timedelta) -> timedelta:
    return 2 * period + min(period, LATE_SLACK)


def _stuck_after(typical_seconds: float | None) -> timedelta:
    if typical_seconds is None:
        return STUCK_UNKNOWN
    return max(STUCK_FLOOR, timedelta(seconds=STUCK_FACTOR * typical_seconds))


def job_health(as_of: datetime | None = None) -> list[JobHealth]:
    """Every job's health at `as_of` (default now), in catalogue order. Reads only (four queries)."""
    as_of = as_of or clock.now()
    states = {s.job_name: s for s in JobState.objects.all()}
    alive_since = clock.wall_now() - timedelta(seconds=settings.JOB_ABANDONED_AFTER)
    running = {r.job_name: r for r in JobRun.objects.filter(status="running", heartbeat_at__gte=alive_since)}
    latest_runs = dict(JobRun.objects.exclude(status="skipped").order_by().values("job_name")
                       .annotate(latest=Max("started_at")).values_list("job_name", "latest"))
    # JobState has every success since it exists; the runs also cover those written before it did.
    successes = dict(JobRun.objects.filter(status__in=JobRun.SUCCESSFUL).order_by().values("job_name")
                     .annotate(latest=Max("finished_at")).values_list("job_name", "latest"))
    result = []
    for name, spec in JOBS.items():
        state = states.get(name)
        cron = spec.effective_cron
        last_success = max([t for t in (state and state.last_success_at, successes.get(name)) if t], default=None)
        last_run = max([t for t in (latest_runs.get(name), state and state.last_checked_at) if t], default=None)
        run = running.get(name)
        running_since = run.started_at if run else None
        period = cron_period(cron, as_of) if cron else None
        if cron is None:
            health, reason = "off", f"schedule switched off ({spec.env_var}=off)"
        elif run is not None and as_of - run.started_at > _stuck_after(state.typical_seconds if state else None):
            typical = (f"usually {state.typical_seconds:.0f} s" if state and state.typical_seconds
                       else "no usual time yet")
            health, reason = "stuck", f"running since {run.started_at:%Y-%m-%d %H:%M} UTC ({typical})"
        elif last_success is None:
            health, reason = "never", "no successful run yet"
        elif as_of - last_success > _late_after(period):
            health, reason = "late", (f"no successful run since {last_success:%Y-%m-%d %H:%M} UTC "
                                      f"(expected every {_human(period)})")
        else:
            health, reason = "ok", ""
        result.append(JobHealth(name, health, cron, period, last_success, last_run, running_since, reason))
    return result


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}{'s' if n > 1 else ''}"
    return f"{seconds} s"


# --- incidents and alerts ------------------------------------------------------------------------


def check_and_alert(as_of: datetime | None = None) -> dict[str, int]:
    """Open an incident for each job that turned late or stuck, close those that are ok again, and write
    one OpsAlert per change. Returns counts by change."""
    as_of = as_of or clock.now()
    counts = {"opened": 0, "recovered": 0}
    for health in job_health(as_of):
        trouble = health.in_trouble
        with transaction.atomic():
            state, _ = JobState.objects.select_for_update().get_or_create(job_name=health.name,
                                                                          defaults={"updated_at": as_of})
            if trouble and not state.incident_state:
                state.incident_state, state.incident_started_at = health.state, as_of
                _write_alert(health, state, kind=health.state, as_of=as_of)
                counts["opened"] += 1
            elif not trouble and state.incident_state and health.state != "never":
                _write_alert(health, state, kind="recovered", as_of=as_of)
                state.incident_state, state.incident_started_at = "", None
                counts["recovered"] += 1
            else:
                continue
            state.updated_at = as_of
            state.save(update_fields=["incident_state", "incident_started_at", "updated_at"])
    return counts


def _write_alert(health: JobHealth, state: JobState, *, kind: str, as_of: datetime) -> None:
    if not settings.OPS_EMAIL:
        logger.warning("job %s is %s: %s (COBRADOR_OPS_EMAIL is not set: nobody is mailed)", health.name,
                       health.state, health.reason)
        return
    if kind == "recovered":
        subject = f"[cobrador] {health.name} recovered"
        body = (f"The job {health.name} is running again: last success {health.last_success_at:%Y-%m-%d %H:%M} "
                f"UTC. It was {state.incident_state} from {state.incident_started_at:%Y-%m-%d %H:%M} UTC.\n")
    else:
        subject = f"[cobrador] {health.name} is {kind}"
        body = (f"The job {health.name} is {kind}: {health.reason}.\n\nCron: {health.cron}. "
                f"`cobrador jobs list` shows every job's health; its runs are in the admin (Job runs).\n"
                f"You get one more e-mail when it recovers.\n")
    logger.warning("job %s: %s", health.name, subject)
    try:
        with transaction.atomic():
            OpsAlert.objects.create(job_name=health.name, kind=kind, subject=subject[:200], body=body,
                                    incident_started_at=state.incident_started_at, created_at=as_of)
    except IntegrityError:
        pass  # already written for this incident


def send_pending_alerts(limit: int = 50) -> int:
    """Send unsent alerts (after commit, outside any transaction); returns how many were sent."""
    sent = 0
    domain = (parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "cobrador@localhost").rpartition("@")[2]
    for alert in OpsAlert.objects.filter(sent_at__isnull=True, attempts__lt=10).order_by("pk")[:limit]:
        OpsAlert.objects.filter(pk=alert.pk).update(attempts=F("attempts") + 1)
        message = EmailMessage(subject=alert.subject, body=alert.body, to=settings.OPS_EMAIL,
                               headers={"Message-ID": f"<ops-alert-{alert.pk}@{domain}>",
                                        "Auto-Submitted": "auto-generated"})
        try:
            message.send()
        except Exception as exc:  # noqa: BLE001 - kept unsent; the next job-watch run tries again
            logger.warning("ops alert %s not sent: %s", alert.pk, exc)
            OpsAlert.objects.filter(pk=alert.pk).update(last_error=f"{type(exc).__name__}: {exc}"[:1000])
            continue
        OpsAlert.objects.filter(pk=alert.pk).update(sent_at=clock.now(), last_error="")
        sent += 1
    return sent


def job_watch_sweep(run) -> None:
    """The `job-watch` job: incidents and alerts (see the module docstring)."""
    for kind, n in check_and_alert(run.as_of).items():
        run.count(kind, n)
    # Each incident change committed on its own above: the e-mails go now, outside any transaction.
    run.count("alerts_sent", send_pending_alerts())
