"""The usage jobs (registered in jobs/catalog.py).

`usage-daily-snapshot` (15 0 * * *): for every organization, the local days that ended before `as_of`
and have no snapshot yet (a missed run is caught up, up to MAX_CATCH_UP_DAYS back), plus the latest
stored day again (a rerun replaces it with the same values). `usage-monthly-snapshot` (45 0 1 * *):
the same per local month. Each organization is computed holding its row lock: two workers running
the job at once compute each organization one after the other, never both half-way (one transaction
per batch of organizations; a failing one is retried alone and parked by the runner).
"""

from datetime import date, timedelta

from django.db.models import Max

from cobrador.organizations.models import Organization
from cobrador.usage.ledger import local_day_of
from cobrador.usage.models import UsageDailySnapshot, UsageMonthlySnapshot
from cobrador.usage.snapshots import month_start, next_month, write_daily_snapshots, write_monthly_snapshot

MAX_CATCH_UP_DAYS = 800
ORGANIZATION_BATCH = 50


def _first_day(organization, last: date | None, yesterday: date) -> date:
    created = local_day_of(organization.timezone, organization.created_at)
    first = last if last is not None else created
    return max(first, created, yesterday - timedelta(days=MAX_CATCH_UP_DAYS - 1))


def _daily_for(organization_ids, run) -> None:
    for organization in Organization.objects.select_for_update().filter(pk__in=list(organization_ids)).order_by("pk"):
        yesterday = local_day_of(organization.timezone, run.as_of) - timedelta(days=1)
        last = UsageDailySnapshot.objects.filter(organization=organization, day__lte=yesterday).aggregate(
            last=Max("day"))["last"]
        day, days = _first_day(organization, last, yesterday), []
        while day <= yesterday:
            days.append(day)
            day += timedelta(days=1)
        write_daily_snapshots(organization=organization, days=days)
        run.count("days", len(days))


def _monthly_for(organization_ids, run) -> None:
    for organization in Organization.objects.select_for_update().filter(pk__in=list(organization_ids)).order_by("pk"):
        this_month = month_start(local_day_of(organization.timezone, run.as_of))
        last = UsageMonthlySnapshot.objects.filter(organization=organization, month__lt=this_month).aggregate(
            last=Max("month"))["last"]
        month = month_start(_first_day(organization, last, this_month - timedelta(days=1)))
        while month < this_month:
            write_monthly_snapshot(organization=organization, month=month)
            run.count("months")
            month = next_month(month)


def usage_daily_snapshot_sweep(run) -> None:
    ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
    run.process(ids, lambda batch: _daily_for(batch, run), batch_size=ORGANIZATION_BATCH)


def usage_monthly_snapshot_sweep(run) -> None:
    ids = list(Organization.objects.order_by("pk").values_list("pk", flat=True))
    run.process(ids, lambda batch: _monthly_for(batch, run), batch_size=ORGANIZATION_BATCH)
