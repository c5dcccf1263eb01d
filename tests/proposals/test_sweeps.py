import threading
import time
from datetime import date

import pytest
from django.db import connection, transaction

from cobrador.core import clock as clock_module
from cobrador.events.models import Event
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.runner import run_job
from cobrador.proposals import services
from cobrador.proposals.models import Proposal, ProposalReminder, ProposalSettings
from cobrador.proposals.sweeps import nearest_reminder
from tests.concurrency import run_job_in_two_threads
from tests.conftest import make_org
from tests.proposals.factories import make_proposal
from tests.subscriptions.conftest import sweep, utc

pytestmark = pytest.mark.django_db


def _status(proposal) -> str:
    return Proposal.objects.get(pk=proposal.pk).status


def _reminders(proposal=None) -> list[tuple]:
    rows = ProposalReminder.objects.order_by("pk")
    if proposal is not None:
        rows = rows.filter(proposal=proposal)
    return list(rows.values_list("expires_on", "days_before"))


def test_both_jobs_are_in_the_catalogue():
    assert JOBS["proposal-expiration"].cron == "30 0 * * *"
    assert JOBS["proposal-reminder"].cron == "0 9 * * *"


# --- proposal-expiration --------------------------------------------------------------------------------


def test_a_utc_minus_3_proposal_expires_at_its_local_midnight_not_at_utc_midnight(api, clock):
    proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))  # America/Sao_Paulo, UTC-3

    at_0030_utc = sweep("proposal-expiration", utc(2026, 3, 11, 0, 30))  # 21:30 on the 10th there
    still_sent = _status(proposal)
    at_2130_utc = sweep("proposal-expiration", utc(2026, 3, 10, 21, 30))  # 18:30 there
    at_0300_utc = sweep("proposal-expiration", utc(2026, 3, 11, 3, 0))  # 00:00 on the 11th there

    assert still_sent == "sent" and at_0030_utc.counts == {} and at_2130_utc.counts == {}
    assert at_0300_utc.counts == {"expired": 1}
    expired = Proposal.objects.get(pk=proposal.pk)
    assert expired.status == "expired" and expired.expired_at == utc(2026, 3, 11, 3, 0)
    event = Event.objects.get(type="proposal.expired")
    assert event.data["id"] == proposal.public_id and event.data["status"] == "expired"
    assert event.data["lines"][0]["quantity"] == 1  # the full object


def test_only_open_proposals_expire_and_a_rerun_writes_nothing(api, clock):
    last_day = date(2026, 3, 5)
    sent = make_proposal(api.organization, expires_on=last_day)
    viewed = make_proposal(api.organization, expires_on=last_day)
    with transaction.atomic():
        services.record_view(proposal=viewed)
    draft = make_proposal(api.organization, expires_on=last_day, send=False)
    accepted = make_proposal(api.organization, expires_on=last_day)
    declined = make_proposal(api.organization, expires_on=last_day)
    with transaction.atomic():
        services.accept_proposal(proposal=accepted)
        services.decline_proposal(proposal=declined)
    later = make_proposal(api.organization, expires_on=date(2026, 3, 6))

    first = sweep("proposal-expiration", utc(2026, 3, 6, 3, 30))
    rerun = sweep("proposal-expiration", utc(2026, 3, 6, 4, 30))

    assert first.counts == {"expired": 2} and rerun.counts == {} and rerun.items_done == 0
    assert [_status(p) for p in (sent, viewed, draft, accepted, declined, later)] == [
        "expired", "expired", "draft", "accepted", "declined", "sent"]
    assert Event.objects.filter(type="proposal.expired").count() == 2


def test_each_organization_is_expired_by_its_own_calendar(clock):
    tokyo = make_org("Tokyo", "live").organization
    tokyo.timezone = "Asia/Tokyo"
    tokyo.save(update_fields=["timezone"])
    sao_paulo = make_org("Acme", "live").organization
    in_tokyo = make_proposal(tokyo, expires_on=date(2026, 3, 10))
    in_sao_paulo = make_proposal(sao_paulo, expires_on=date(2026, 3, 10))

    sweep("proposal-expiration", utc(2026, 3, 10, 15, 0))  # 00:00 on the 11th in Tokyo, 12:00 on the 10th in SP

    assert (_status(in_tokyo), _status(in_sao_paulo)) == ("expired", "sent")


@pytest.mark.django_db(transaction=True)
def test_an_acceptance_racing_the_sweep_is_never_expired():
    clock_module.set(utc(2026, 3, 11, 2, 59))  # 23:59 on the last valid day in Sao Paulo
    try:
        organization = make_org("Acme", "live").organization
        proposal = make_proposal(organization, expires_on=date(2026, 3, 10))
        locked, runs, errors = threading.Event(), [], []

        def accept():
            try:
                with transaction.atomic():
                    row = services.lock_proposal(Proposal.objects.all(), pk=proposal.pk)
                    services.accept_proposal(proposal=row)
                    locked.set()
                    time.sleep(0.5)  # the sweep starts while the acceptance holds the row
            except Exception as exc:  # noqa: BLE001 - asserted below
                errors.append(exc)
                locked.set()
            finally:
                connection.close()

        def expire():
            try:
                locked.wait(10)
                runs.append(run_job("proposal-expiration", as_of=utc(2026, 3, 11, 3, 30)))
            finally:
                connection.close()

        threads = [threading.Thread(target=accept), threading.Thread(target=expire)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

        assert not errors and runs[0].status == "succeeded"
        assert _status(proposal) == "accepted"
        assert not Event.objects.filter(type="proposal.expired").exists()
        assert Event.objects.filter(type="proposal.accepted").count() == 1
    finally:
        clock_module.set(None)


# --- proposal-reminder --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("today", "sent_on", "expected"), [
    (date(2026, 3, 7), date(2026, 3, 1), 3),   # D-3
    (date(2026, 3, 8), date(2026, 3, 1), 3),   # D-2: the 3-day one is still the nearest due
    (date(2026, 3, 9), date(2026, 3, 1), 1),   # D-1
    (date(2026, 3, 10), date(2026, 3, 1), 1),  # the last valid day
    (date(2026, 3, 6), date(2026, 3, 1), None),  # D-4: none due yet
    (date(2026, 3, 11), date(2026, 3, 1), None),  # past the last valid day
    (date(2026, 3, 8), date(2026, 3, 8), None),  # sent two days before: no 3-day reminder...
    (date(2026, 3, 9), date(2026, 3, 8), 1),  # ... only the 1-day one
    (date(2026, 3, 10), date(2026, 3, 10), None),  # valid for less than a day: none
])
def test_the_nearest_due_reminder(today, sent_on, expected):
    assert nearest_reminder(days=[3, 1], today=today, expires_on=date(2026, 3, 10), sent_on=sent_on) == expected


def test_reminders_go_out_three_and_one_day_before_once_each(api, clock):
    proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    days = [utc(2026, 3, d, 12, 0) for d in range(5, 12)]

    counts = [sweep("proposal-reminder", at).counts for at in days]
    rerun = sweep("proposal-reminder", utc(2026, 3, 9, 13, 0))

    assert counts == [{}, {}, {"reminded": 1}, {}, {"reminded": 1}, {}, {}]
    assert rerun.counts == {}
    assert _reminders(proposal) == [(date(2026, 3, 10), 3), (date(2026, 3, 10), 1)]
    events = list(Event.objects.filter(type="proposal.expiring_soon").order_by("pk"))
    assert [e.data["days_before"] for e in events] == [3, 1]
    assert events[0].data["id"] == proposal.public_id


def test_the_reminder_day_is_the_organizations_local_day(api, clock):
    proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))

    before = sweep("proposal-reminder", utc(2026, 3, 7, 2, 0))  # 23:00 on the 6th in Sao Paulo: D-4
    on_d3 = sweep("proposal-reminder", utc(2026, 3, 7, 3, 0))  # 00:00 on the 7th there

    assert before.counts == {} and on_d3.counts == {"reminded": 1}
    assert _reminders(proposal) == [(date(2026, 3, 10), 3)]


def test_a_5_day_catch_up_sends_only_the_nearest_reminder(api, clock):
    proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))

    run = sweep("proposal-reminder", utc(2026, 3, 9, 12, 0))  # nothing ran from the 4th to the 8th
    rerun = sweep("proposal-reminder", utc(2026, 3, 10, 12, 0))

    assert run.counts == {"reminded": 1} and rerun.counts == {}
    assert _reminders(proposal) == [(date(2026, 3, 10), 1)]


def test_no_reminder_for_closed_proposals_and_the_organizations_own_days(api, clock):
    ProposalSettings.objects.create(organization=api.organization, reminder_days=[7], updated_at=clock.now())
    open_one = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    accepted = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    with transaction.atomic():
        services.accept_proposal(proposal=accepted)

    on_d3 = sweep("proposal-reminder", utc(2026, 3, 7, 12, 0))

    assert on_d3.counts == {"reminded": 1}
    assert _reminders(open_one) == [(date(2026, 3, 10), 7)] and _reminders(accepted) == []


@pytest.mark.django_db(transaction=True)
def test_two_workers_send_each_reminder_once():
    clock_module.set(utc(2026, 3, 1, 12, 0))
    try:
        organization = make_org("Acme", "live").organization
        proposals = [make_proposal(organization, expires_on=date(2026, 3, 10)) for _ in range(30)]
        clock_module.set(utc(2026, 3, 9, 12, 0))

        runs = run_job_in_two_threads("proposal-reminder", as_of=utc(2026, 3, 9, 12, 0), timeout=60)

        assert sum(run.counts.get("reminded", 0) for run in runs) == 30
        assert ProposalReminder.objects.count() == 30
        assert Event.objects.filter(type="proposal.expiring_soon").count() == 30
        assert {p.pk for p in proposals} == set(ProposalReminder.objects.values_list("proposal_id", flat=True))
    finally:
        clock_module.set(None)


