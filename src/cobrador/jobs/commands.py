"""`cobrador jobs list` (every job's cron, next tick, latest run or check and health, the most recently
run first, jobs that never ran last) and `cobrador jobs run` (one sweep now, synchronously, optionally as
of another time)."""

import sys
from datetime import datetime

from django.conf import settings
from django_ox.cron import CronExpression

from cobrador.core import clock
from cobrador.core.commandline import CommandFailed, check_encryption_key, parse_at
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.health import job_health
from cobrador.jobs.models import JobRun, JobState
from cobrador.jobs.runner import abandon_dead_runs, run_job

HEADER = ("NAME", "CRON", "NEXT RUN (UTC)", "LAST RUN (UTC)", "HEALTH", "LAST SUCCESS (UTC)", "RESULT")


def _at(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else "never"


def jobs_list_rows(now: datetime) -> list[tuple[str, ...]]:
    """The table's rows; raises CommandFailed naming the job whose cron is invalid."""
    next_runs = {}
    for name, spec in JOBS.items():
        cron = spec.effective_cron
        try:
            next_runs[name] = (CronExpression(cron).following(now.replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M")
                               if cron else "off")
        except ValueError as exc:
            raise CommandFailed(f"job {name}: cron {cron!r} is invalid ({exc}); check {spec.env_var}") from None
    abandon_dead_runs()
    health = {h.name: h for h in job_health(now)}
    checks = dict(JobState.objects.values_list("job_name", "last_checked_at"))
    rows = []
    for name, spec in JOBS.items():
        cron, next_run = spec.effective_cron, next_runs[name]
        last = JobRun.objects.filter(job_name=name).exclude(status="skipped").order_by("-started_at").first()
        checked = checks.get(name)
        if checked is not None and (last is None or checked > (last.finished_at or last.started_at)):
            last_at, result = checked, "checked: nothing to do"
        elif last is None:
            last_at, result = None, "-"
        else:
            last_at = last.started_at
            result = f"{last.status}: {last.items_done} done, {last.items_failed} failed, {last.items_skipped} skipped"
        state = health[name]
        health_text = state.state + (f" ({state.reason})" if state.in_trouble else "")
        rows.append((last_at, (name, cron or "off", next_run, _at(last_at), health_text,
                               _at(state.last_success_at), result)))
    rows.sort(key=lambda row: (row[0] is None, -(row[0].timestamp() if row[0] else 0)))
    return [row for _, row in rows]


def jobs_list(args) -> int:
    rows = [HEADER, *jobs_list_rows(clock.now())]
    last = len(HEADER) - 1
    widths = [max(len(r[i]) for r in rows) for i in range(last)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i < last else cell for i, cell in enumerate(row)))
    return 0


def jobs_run(args) -> int:
    if args.name not in JOBS:
        raise CommandFailed(f"unknown job {args.name!r}; known jobs: {', '.join(JOBS)}")
    check_encryption_key()  # a sweep may write encrypted values: never with a key the database refuses
    if args.at:
        at = parse_at(args.at)
        if abs((at - clock.now()).total_seconds()) > 60 and not settings.TIME_TRAVEL:
            raise CommandFailed("--at other than now is refused unless COBRADOR_TIME_TRAVEL=1 is set")
        # The whole run sees `at` as now, so what it writes is stamped as of that time too.
        with clock.frozen_at(at):
            run = run_job(args.name, trigger="cli")
    else:
        run = run_job(args.name, trigger="cli")
    print(f"{run.job_name} as of {run.as_of:%Y-%m-%d %H:%M:%S} UTC: {run.status}; "
          f"{run.items_done} done, {run.items_failed} failed, {run.items_skipped} skipped")
    for kind, n in sorted(run.counts.items()):
        print(f"  {kind}: {n}")
    if run.error:
        print(run.error, file=sys.stderr)
    return 0 if run.status in ("succeeded", "partial") else 1
