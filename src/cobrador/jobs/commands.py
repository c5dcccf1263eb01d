"""`cobrador jobs list` (the schedules, their next fire time and last result) and `cobrador jobs run`
(one sweep now, synchronously, optionally as of another time)."""

import sys

from django.conf import settings
from django_ox.cron import CronExpression

from cobrador.core import clock
from cobrador.core.commandline import CommandFailed, check_encryption_key, parse_at
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job


def jobs_list(args) -> int:
    now = clock.now()
    rows = [("NAME", "CRON", "NEXT RUN (UTC)", "LAST RUN (UTC)", "RESULT")]
    for name, spec in JOBS.items():
        cron = spec.effective_cron
        try:
            next_run = (CronExpression(cron).following(now.replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M")
                        if cron else "off")
        except ValueError as exc:
            raise CommandFailed(f"job {name}: cron {cron!r} is invalid ({exc}); check {spec.env_var}") from None
        last = JobRun.objects.filter(job_name=name).order_by("-started_at").first()
        if last is None:
            last_at, result = "never", "-"
        else:
            last_at = last.started_at.strftime("%Y-%m-%d %H:%M:%S")
            result = f"{last.status}: {last.items_done} done, {last.items_failed} failed, {last.items_skipped} skipped"
        rows.append((name, cron or "off", next_run, last_at, result))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(cell.ljust(widths[i]) if i < 4 else cell for i, cell in enumerate(row)))
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
