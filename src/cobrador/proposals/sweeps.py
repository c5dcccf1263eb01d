"""The proposal jobs, each decided by the organization's calendar day at `run.as_of`.

* `proposal-expiration` (30 0 * * *): a `sent` or `viewed` proposal whose last valid day (`expires_on`)
  is before the organization's local today becomes `expired`, with proposal.expired (the seller's
  e-mail is drafted from it). The batch re-reads its rows under a row lock with the same condition, so
  a proposal accepted or declined meanwhile is never expired, and a rerun finds nothing to do.
* `proposal-reminder` (0 9 * * *): on the organization's reminder days (ProposalSettings, default 3
  and 1 days before the last valid day) an open proposal gets proposal.expiring_soon, from which the
  customer's reminder is drafted. A reminder of `d` days is due from the local day `expires_on - d`
  on, and only when the proposal went out before that day (one sent two days before expiry gets no
  3-day reminder; one valid for less than a day gets none). A run that missed days sends only the
  nearest due reminder. Each (proposal, expires_on, days_before) is written once as a ProposalReminder
  row (unique), so reruns and concurrent workers send nothing twice.

Each step selects its due ids with one indexed query per time zone and handles them in batches, one
transaction per batch.
"""

from datetime import date, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Prefetch, Q

from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects, update_rows
from cobrador.events.services import EventDraft, record_events
from cobrador.organizations.services import attach_organizations
from cobrador.proposals.models import Proposal, ProposalLine, ProposalReminder, ProposalSettings
from cobrador.proposals.services import OPEN_STATUSES, proposal_data

BATCH_SIZE = 1000


def _local_days(as_of) -> list[tuple[str, date]]:
    """Each time zone of the organizations with open proposals, and its calendar day at `as_of`."""
    zones = (Proposal.objects.filter(status__in=OPEN_STATUSES).order_by()
             .values_list("organization__timezone", flat=True).distinct())
    return [(zone, as_of.astimezone(ZoneInfo(zone)).date()) for zone in sorted(zones)]


def _load(ids, condition: Q) -> list[Proposal]:
    lines = ProposalLine.objects.select_related("plan", "coupon", "subscription").order_by("position")
    proposals = list(Proposal.objects.select_for_update(of=("self",)).select_related("account")
                     .prefetch_related(Prefetch("lines", queryset=lines))
                     .filter(condition, pk__in=ids).order_by("pk"))
    attach_organizations(proposals)
    return proposals


# --- proposal-expiration ------------------------------------------------------------------------------------


def expire(proposals: list[Proposal], run) -> None:
    now = clock.now()
    for proposal in proposals:
        proposal.status = "expired"
        proposal.expired_at = now
        proposal.updated_at = now
    update_rows(proposals, ["status", "expired_at", "updated_at"])
    record_events(EventDraft(p.organization, "proposal.expired", proposal_data(p)) for p in proposals)
    run.count("expired", len(proposals))


def proposal_expiration_sweep(run) -> None:
    for zone, today in _local_days(run.as_of):
        condition = Q(status__in=OPEN_STATUSES, organization__timezone=zone, expires_on__lt=today)
        ids = list(Proposal.objects.filter(condition).order_by("pk").values_list("pk", flat=True))
        run.process(ids, lambda batch, condition=condition: expire(_load(batch, condition), run),
                    batch_size=BATCH_SIZE)


# --- proposal-reminder --------------------------------------------------------------------------------------


def nearest_reminder(*, days: list[int], today: date, expires_on: date, sent_on: date) -> int | None:
    """The reminder (days before the last valid day) due today, or None: the nearest of those whose
    day has come and that the proposal was already out for."""
    days_left = (expires_on - today).days
    if days_left < 0:
        return None
    due = [d for d in days if days_left <= d <= (expires_on - sent_on).days]
    return min(due) if due else None


def _reminder_days() -> tuple[dict[int, list[int]], list[int]]:
    configured = dict(ProposalSettings.objects.values_list("organization_id", "reminder_days"))
    return configured, list(ProposalSettings.DEFAULT_REMINDER_DAYS)


def remind(proposals: list[Proposal], due: dict[int, tuple[date, int]], run) -> None:
    now = clock.now()
    sent = set(ProposalReminder.objects.filter(proposal_id__in=[p.pk for p in proposals])
               .values_list("proposal_id", "expires_on", "days_before"))
    reminders, events = [], []
    for proposal in proposals:
        expires_on, days_before = due[proposal.pk]
        if proposal.expires_on != expires_on or (proposal.pk, expires_on, days_before) in sent:
            continue
        reminders.append(build(ProposalReminder, proposal_id=proposal.pk, expires_on=expires_on,
                               days_before=days_before, sent_at=now))
        events.append(EventDraft(proposal.organization, "proposal.expiring_soon",
                                 {**proposal_data(proposal), "days_before": days_before}))
    insert_objects(reminders)
    record_events(events)
    run.count("reminded", len(reminders))


def proposal_reminder_sweep(run) -> None:
    configured, default = _reminder_days()
    longest = max([*default, *(d for days in configured.values() for d in days)])
    for zone, today in _local_days(run.as_of):
        window = Q(status__in=OPEN_STATUSES, organization__timezone=zone, expires_on__gte=today,
                   expires_on__lte=today + timedelta(days=longest))
        candidates = list(Proposal.objects.filter(window).order_by("pk")
                          .values_list("pk", "organization_id", "expires_on", "sent_at"))
        if not candidates:
            continue
        tz = ZoneInfo(zone)
        already = set(ProposalReminder.objects.filter(proposal__in=Proposal.objects.filter(window))
                      .values_list("proposal_id", "expires_on", "days_before"))
        due = {}
        for pk, organization_id, expires_on, sent_at in candidates:
            days_before = nearest_reminder(days=configured.get(organization_id, default), today=today,
                                           expires_on=expires_on, sent_on=sent_at.astimezone(tz).date())
            if days_before is not None and (pk, expires_on, days_before) not in already:
                due[pk] = (expires_on, days_before)
        run.process(list(due), lambda batch, window=window, due=due: remind(_load(batch, window), due, run),
                    batch_size=BATCH_SIZE)
