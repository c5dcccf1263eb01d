"""The card-expiring, trial-ending and invoice-reminders sweeps: windows, offsets, replaced cards, reruns."""

from datetime import UTC, date, datetime, timedelta

from django.db import transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from cobrador.catalog.services import create_plan
from cobrador.events.models import Event
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from cobrador.notifications.sweeps import card_expires_at
from cobrador.subscriptions.services import create_subscription
from tests.notifications.conftest import drain, make_account, make_card, make_invoice, notices

SETTINGS = "/v1/organizations/settings/notifications"


def at(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_the_jobs_are_scheduled_as_the_issue_says():
    assert JOBS["card-expiring"].cron == "0 10 * * 1"
    assert JOBS["trial-ending"].cron == "0 8 * * *"
    assert JOBS["notification-delivery"].cron == "* * * * *"
    assert JOBS["invoice-reminders"].cron == "0 9 * * *"


def test_a_card_expires_when_its_expiry_month_ends():
    assert card_expires_at(12, 2026) == at(2027, 1, 1)
    assert card_expires_at(1, 2027) == at(2027, 2, 1)
    assert card_expires_at(2, 2028) == at(2028, 3, 1)


def test_card_expiry_across_december_and_january(api, clock, smtp):
    api.patch(SETTINGS, {"update_card_url": "https://app.acme.test/accounts/{account_id}/cards/{payment_method_id}"})
    clock.set(at(2026, 11, 1))
    december = make_card(make_account(api.organization, name="Dez", email="dez@example.com"), exp_month=12,
                         exp_year=2026, token="tok_1226")
    january = make_card(make_account(api.organization, name="Jan", email="jan@example.com", locale="en"),
                        exp_month=1, exp_year=2027, token="tok_0127")

    run_job("card-expiring", as_of=at(2026, 11, 30, 10))  # December card: 32 days left
    assert notices() == []

    run_job("card-expiring", as_of=at(2026, 12, 7, 10))  # 25 days left for December, 56 for January
    [email] = notices(channel="email")
    assert email.account == december.account
    assert email.dedupe_key == f"card_expiring:{december.public_id}:2026-12:30:email"
    assert email.context["card"]["expires"] == "12/2026" and email.context["days_left"] == 25
    in_app = Notice.objects.get(channel="in_app")
    link = f"https://app.acme.test/accounts/{december.account.public_id}/cards/{december.public_id}"
    assert in_app.link == link

    run_job("card-expiring", as_of=at(2027, 1, 4, 10))  # December's has expired; January's has 28 days left
    assert [(n.account, n.dedupe_key) for n in notices(channel="email")][1] == \
        (january.account, f"card_expiring:{january.public_id}:2027-01:30:email")

    drain()
    # Both notices fall due at once, so the batch may send them in either order.
    assert sorted(m.message["Subject"] for m in smtp.wait_for(2)) == [
        "Seu cartão Visa final 1226 vence em breve", "Your Visa card ending in 0127 expires soon"]
    dec_mail = smtp.to("dez@example.com")[0]
    assert f"Atualizar cartão: {link}" in dec_mail.message.get_body(("plain",)).get_content()
    assert f'href="{link}"' in dec_mail.message.get_body(("html",)).get_content()
    page = api.get(f"/v1/billing_accounts/{december.account.public_id}/notifications").json()["data"]
    assert [(n["type"], n["link"]) for n in page] == [("card_expiring", link)]


def test_a_card_replaced_by_a_newer_default_is_not_alerted(api, clock):
    clock.set(at(2026, 11, 1))
    account = make_account(api.organization)
    old = make_card(account, exp_month=12, exp_year=2026, token="tok_old")
    clock.advance(timedelta(days=1))
    make_card(account, exp_month=12, exp_year=2031, token="tok_new", default=True)
    lone = make_card(make_account(api.organization, email="lone@example.com"), exp_month=12, exp_year=2026,
                     token="tok_lone")

    run = run_job("card-expiring", as_of=at(2026, 12, 7, 10))

    assert {n.dedupe_key.split(":")[1] for n in notices()} == {lone.public_id}
    assert old.public_id not in {n.context["card"]["id"] for n in notices()}
    assert run.counts["skipped_replaced"] == 1


def test_one_alert_per_card_expiry_and_offset(api, clock):
    api.patch(SETTINGS, {"card_expiring_days": [30, 7]})
    clock.set(at(2026, 11, 1))
    card = make_card(make_account(api.organization), exp_month=12, exp_year=2026)

    for as_of in (at(2026, 12, 7, 10), at(2026, 12, 7, 10), at(2026, 12, 14, 10), at(2026, 12, 21, 10)):
        run_job("card-expiring", as_of=as_of)  # 25, 25, 18, 11 days left: the 30-day alert only
    assert [n.dedupe_key for n in notices(channel="email")] == [f"card_expiring:{card.public_id}:2026-12:30:email"]

    run_job("card-expiring", as_of=at(2026, 12, 28, 10))  # 4 days left: the 7-day alert
    run_job("card-expiring", as_of=at(2026, 12, 28, 10))
    run_job("card-expiring", as_of=at(2027, 1, 4, 10))  # expired: nothing
    assert [n.dedupe_key for n in notices(channel="email")] == [
        f"card_expiring:{card.public_id}:2026-12:30:email", f"card_expiring:{card.public_id}:2026-12:7:email"]


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(exp_offset=st.integers(min_value=0, max_value=4), offsets=st.sets(st.integers(1, 90), min_size=1, max_size=3),
       first_monday=st.integers(min_value=0, max_value=20), rerun=st.booleans())
def test_weekly_runs_alert_once_per_reached_offset_and_never_after_expiry(api, clock, exp_offset, offsets,
                                                                          first_monday, rerun):
    """Whatever the offsets and the Monday the weekly runs start on: every alert is for an offset the card
    had reached (0 < days left <= offset) at that run, at most one per offset, none after expiry, and if
    any run fell inside the widest window at least one alert went out."""
    Notice.objects.all().delete()
    api.patch(SETTINGS, {"card_expiring_days": sorted(offsets)})
    clock.set(at(2026, 1, 1))
    month = 4 + exp_offset
    account = make_account(api.organization)
    card = make_card(account, exp_month=month, exp_year=2026, token=f"tok_{first_monday}_{month}_{len(offsets)}")
    expires_at = card_expires_at(month, 2026)
    as_of = at(2026, 1, 5, 10) + timedelta(weeks=first_monday)  # a Monday
    alerts_expected_at_least = False
    while as_of < expires_at + timedelta(weeks=2):
        before = {n.dedupe_key for n in notices(channel="email", context__card__id=card.public_id)}
        run_job("card-expiring", as_of=as_of)
        if rerun:
            run_job("card-expiring", as_of=as_of)
        days_left = -((as_of - expires_at) // timedelta(days=1))
        new = {n.dedupe_key for n in notices(channel="email", context__card__id=card.public_id)} - before
        for key in new:
            offset = int(key.split(":")[3])
            assert offset in offsets and 0 < days_left <= offset
        assert len(new) <= 1
        if 0 < days_left <= max(offsets):
            alerts_expected_at_least = True
        as_of += timedelta(weeks=1)
    keys = [n.dedupe_key for n in notices(channel="email", context__card__id=card.public_id)]
    assert len(keys) == len(set(keys))
    assert bool(keys) == alerts_expected_at_least


def test_trials_ending_within_the_window_stress_a_missing_payment_method(api, clock, smtp):
    clock.set(at(2026, 3, 1, 9))
    with transaction.atomic():
        plan = create_plan(organization=api.organization, name="Pro", amount=9900)
    without = make_account(api.organization, name="Sem Cartão", email="sem@example.com")
    with_card = make_account(api.organization, name="Com Cartão", email="com@example.com", locale="en")
    make_card(with_card, exp_month=12, exp_year=2030)
    later = make_account(api.organization, name="Depois", email="depois@example.com")
    with transaction.atomic():
        for account, days in ((without, 3), (with_card, 2), (later, 10)):
            create_subscription(organization=api.organization, account=account.public_id, plan=plan.public_id,
                                trial_days=days)

    run = run_job("trial-ending", as_of=at(2026, 3, 1, 8 + 1))
    run_job("trial-ending", as_of=at(2026, 3, 2, 8))
    run_job("trial-ending", as_of=at(2026, 3, 2, 8))  # a rerun

    # One subscription.trial_will_end per trial (the webhook), however many runs saw it within the window.
    events = Event.objects.filter(type="subscription.trial_will_end").order_by("pk")
    assert [(e.data["account"], e.data["status"]) for e in events] == [
        (without.public_id, "trialing"), (with_card.public_id, "trialing")]
    assert all(e.data["object"] == "subscription" and e.data["trial_end"] for e in events)

    emails = notices(type="trial_ending", channel="email")
    assert sorted(n.recipient for n in emails) == ["com@example.com", "sem@example.com"]
    assert {n.recipient: n.context["has_payment_method"] for n in emails} == {"com@example.com": True,
                                                                               "sem@example.com": False}
    assert run.counts["without_payment_method"] == 1
    drain()
    sem = smtp.to("sem@example.com")[0]
    assert sem.message["Subject"] == "Seu período de teste do plano Pro termina em 3 dias"
    assert "VOCÊ NÃO TEM UMA FORMA DE PAGAMENTO CADASTRADA" in sem.message.get_body(("plain",)).get_content()
    com = smtp.to("com@example.com")[0]
    assert com.message["Subject"] == "Your Pro trial ends in 2 days"
    assert "We will charge your payment method on file" in com.message.get_body(("plain",)).get_content()

    run_job("trial-ending", as_of=at(2026, 3, 8, 8))  # the 10-day trial is now 3 days out
    assert len(notices(type="trial_ending", channel="email")) == 3
    assert Event.objects.filter(type="subscription.trial_will_end").count() == 3


def test_invoice_reminders_due_soon_then_overdue_once_per_offset(api, clock, smtp):
    clock.set(at(2026, 3, 1, 12))
    account = make_account(api.organization, locale="en")
    make_invoice(account, number=9, due_date=date(2026, 3, 10))
    make_invoice(account, number=10, due_date=date(2026, 3, 10), status="paid")

    def run_on(day: int, month: int = 3):
        run_job("invoice-reminders", as_of=at(2026, month, day, 12))
        run_job("invoice-reminders", as_of=at(2026, month, day, 12))  # a rerun changes nothing
        return [(n.type, n.context.get("days_until_due", n.context.get("days_overdue")))
                for n in notices(channel="email")]

    assert run_on(6) == []
    assert run_on(7) == [("invoice_due_soon", 3)]
    assert run_on(9) == [("invoice_due_soon", 3)]
    assert run_on(11) == [("invoice_due_soon", 3), ("invoice_overdue", 1)]
    assert run_on(12) == [("invoice_due_soon", 3), ("invoice_overdue", 1)]
    assert run_on(17) == [("invoice_due_soon", 3), ("invoice_overdue", 1), ("invoice_overdue", 7)]
    assert run_on(30) == [("invoice_due_soon", 3), ("invoice_overdue", 1), ("invoice_overdue", 7)]
    drain()
    assert sorted(m.message["Subject"] for m in smtp.wait_for(3)) == [  # one batch: any order
        "Invoice 9 is due in 3 days", "Invoice 9 is overdue", "Invoice 9 is overdue"]


def test_a_long_overdue_invoice_is_not_told_every_offset_at_once(api, clock):
    clock.set(at(2026, 3, 1, 12))
    account = make_account(api.organization)
    make_invoice(account, due_date=date(2026, 2, 20))  # 9 days overdue when reminders first run
    make_invoice(account, number=2, due_date=date(2026, 1, 1))  # long past every offset's catch-up window
    run_job("invoice-reminders", as_of=at(2026, 3, 1, 12))
    assert [(n.type, n.context["days_overdue"]) for n in notices(channel="email")] == [("invoice_overdue", 9)]
    assert notices(channel="email")[0].dedupe_key.endswith(":7:email")
