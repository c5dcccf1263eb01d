"""The invoice-generation sweep: lines, coupons, credits, trials, numbering, reruns, bad rows."""

from datetime import date

import pytest

from cobrador.catalog.models import Plan
from cobrador.customers.credits import credit_balance, grant_credit
from cobrador.customers.models import CreditGrant, CreditUsage
from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice, InvoiceNumberSequence
from cobrador.jobs.models import FailedItem
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import cancel_subscription, update_subscription
from tests.factories import make_org
from tests.subscriptions.conftest import (
    events_of,
    invoice,
    make_account,
    make_coupon,
    make_plan,
    refresh,
    renew,
    subscribe,
    utc,
)


def invoices_of(sub) -> list[Invoice]:
    return list(Invoice.objects.filter(subscription=sub).order_by("period_start"))


def test_an_invoice_per_started_period_with_price_times_quantity(org, account, plan, clock):
    sub = subscribe(org, account, plan, quantity=3)
    future = subscribe(org, account, plan, start=utc(2026, 3, 10))
    run = invoice(utc(2026, 3, 2, 1))
    assert run.status == "succeeded" and run.counts["invoices_created"] == 1
    [inv] = invoices_of(sub)
    assert inv.public_id.startswith("in_") and inv.number == 1
    assert (inv.status, inv.currency) == ("open", "BRL")
    assert (inv.period_start, inv.period_end) == (utc(2026, 3, 1, 12), utc(2026, 4, 1, 12))
    assert (inv.subtotal, inv.discount, inv.credit_applied, inv.total, inv.amount_due) == (30000, 0, 0, 30000, 30000)
    assert inv.due_date == date(2026, 3, 2)  # the period started on March 1st; issued (and due) on the 2nd
    [line] = inv.lines.all()
    assert (line.quantity, line.unit_amount, line.amount, line.plan_id) == (3, 10000, 30000, plan.pk)
    [event] = events_of("invoice.created")
    assert event.data["id"] == inv.public_id and event.data["lines"][0]["amount"] == 30000
    assert event.data["subscription"] == sub.public_id and event.data["number"] == 1
    assert invoices_of(future) == []  # its period has not started
    invoice(utc(2026, 3, 11, 1))
    assert [i.number for i in invoices_of(future)] == [2]


def test_due_days_setting_and_late_issue(org, account, plan, clock, settings):
    settings.INVOICE_DUE_DAYS = 5
    sub = subscribe(org, account, plan)
    invoice(utc(2026, 3, 1, 13))
    assert invoices_of(sub)[0].due_date == date(2026, 3, 6)
    late = subscribe(org, account, plan, start=utc(2026, 2, 1))
    invoice(utc(2026, 3, 1, 13))
    assert invoices_of(late)[0].due_date == date(2026, 3, 6)  # issued on March 1st, never due before that


@pytest.mark.parametrize("duration, periods, expected", [
    ("once", None, [5000, 0, 0, 0]),
    ("repeating", 2, [5000, 5000, 0, 0]),
    ("forever", None, [5000, 5000, 5000, 5000]),
])
def test_coupon_durations(org, account, plan, clock, duration, periods, expected):
    make_coupon(org, code="HALF", percent_off=50, duration=duration, duration_in_periods=periods)
    sub = subscribe(org, account, plan, coupon="HALF")
    for month in (3, 4, 5, 6):
        renew(utc(2026, month, 1, 12))
        invoice(utc(2026, month, 1, 13))
    invoices = invoices_of(sub)
    assert [i.discount for i in invoices] == expected
    assert [i.total for i in invoices] == [10000 - d for d in expected]
    assert [i.coupon_id is not None for i in invoices] == [d > 0 for d in expected]
    assert refresh(sub).coupon_periods_used == sum(d > 0 for d in expected)


def test_fixed_amount_coupon_never_exceeds_the_subtotal_and_stops_on_a_plan_it_does_not_cover(org, account, clock):
    cheap = make_plan(org, amount=3000)
    other = make_plan(org, amount=8000, name="Other")
    make_coupon(org, code="MINUS50", amount_off=5000, duration="forever", plans=[cheap])
    sub = subscribe(org, account, cheap, coupon="MINUS50")
    invoice(utc(2026, 3, 1, 13))
    update_subscription(subscription=refresh(sub), changes={"plan": other.public_id})
    renew(utc(2026, 4, 1, 12))
    invoice(utc(2026, 4, 1, 13))
    first, second = invoices_of(sub)
    assert (first.subtotal, first.discount, first.total, first.status) == (3000, 3000, 0, "paid")
    assert (second.subtotal, second.discount, second.total) == (8000, 0, 8000)
    assert refresh(sub).coupon_periods_used == 1


def test_credits_are_applied_then_a_zero_total_is_paid_at_once(org, account, plan, clock):
    grant_credit(account=account, amount=4000, expires_at=utc(2026, 3, 20))
    grant_credit(account=account, amount=20000)
    sub = subscribe(org, account, plan)
    invoice(utc(2026, 3, 1, 13))
    [first] = invoices_of(sub)
    assert (first.credit_applied, first.total, first.status, first.paid_at) == (10000, 0, "paid", utc(2026, 3, 1, 13))
    assert [u.amount for u in CreditUsage.objects.filter(invoice=first).order_by("pk")] == [4000, 6000]
    assert [e.data["id"] for e in events_of("invoice.paid")] == [first.public_id]
    renew(utc(2026, 4, 1, 12))
    invoice(utc(2026, 4, 1, 13))
    second = invoices_of(sub)[1]
    assert (second.credit_applied, second.total, second.amount_due, second.status) == (10000, 0, 0, "paid")
    renew(utc(2026, 5, 1, 12))
    invoice(utc(2026, 5, 1, 13))
    third = invoices_of(sub)[2]
    assert (third.credit_applied, third.total, third.status) == (4000, 6000, "open")
    assert credit_balance(account=account, as_of=utc(2026, 5, 2)) == 0
    assert not CreditGrant.objects.filter(remaining__lt=0).exists()


def test_several_subscriptions_of_one_account_share_its_credit_in_one_batch(org, account, plan, clock):
    grant_credit(account=account, amount=15000)
    subs = [subscribe(org, account, plan) for _ in range(3)]
    invoice(utc(2026, 3, 1, 13))
    assert [invoices_of(s)[0].credit_applied for s in subs] == [10000, 5000, 0]
    assert sum(CreditUsage.objects.values_list("amount", flat=True)) == 15000
    assert CreditGrant.objects.get().remaining == 0


def test_trials_with_a_payment_method_get_a_zero_invoice_those_without_are_skipped_and_counted(org, clock):
    trial_plan = make_plan(org, trial_days=14, amount=5000)
    with_card = subscribe(org, make_account(org), trial_plan)
    without_card = subscribe(org, make_account(org, card=False), trial_plan)
    run = invoice(utc(2026, 3, 2, 1))
    assert run.items_skipped == 1 and run.counts["skipped_trialing_without_payment_method"] == 1
    [trial_invoice] = invoices_of(with_card)
    assert (trial_invoice.total, trial_invoice.status) == (0, "paid")
    assert trial_invoice.lines.get().description.startswith("Trial of")
    assert invoices_of(without_card) == []
    renew(utc(2026, 3, 15, 12))
    invoice(utc(2026, 3, 15, 13))
    assert [i.total for i in invoices_of(with_card)] == [0, 5000]
    assert refresh(without_card).status == "paused" and invoices_of(without_card) == []


def test_paused_canceled_and_expired_are_not_invoiced(org, account, plan, clock):
    sub = subscribe(org, account, plan)
    cancel_subscription(subscription=refresh(sub), immediately=True)
    Subscription.objects.create(**{**{f.attname: getattr(refresh(sub), f.attname) for f in Subscription._meta.fields
                                      if f.attname not in ("id", "public_id")}, "status": "expired"})
    assert invoice(utc(2026, 3, 2, 1)).counts == {}
    assert Invoice.objects.count() == 0


def test_numbers_are_gapless_per_organization(org, account, plan, clock):
    other = make_org("Initech", "live").organization
    other_plan = make_plan(other)
    other_account = make_account(other)
    for _ in range(3):
        subscribe(org, account, plan)
        subscribe(other, other_account, other_plan)
    invoice(utc(2026, 3, 1, 13))
    for organization in (org, other):
        numbers = list(Invoice.objects.filter(organization=organization).order_by("number")
                       .values_list("number", flat=True))
        assert numbers == [1, 2, 3]
        assert InvoiceNumberSequence.objects.get(organization=organization).last_number == 3


def test_rerunning_invoice_generation_writes_nothing(org, account, plan, clock):
    for _ in range(5):
        subscribe(org, account, plan)
    first = invoice(utc(2026, 3, 1, 13))
    assert first.items_done == 5
    snapshot = list(Invoice.objects.order_by("pk").values()), Event.objects.count()
    again = invoice(utc(2026, 3, 1, 13))
    assert (again.items_done, again.items_failed, again.counts) == (0, 0, {})
    assert (list(Invoice.objects.order_by("pk").values()), Event.objects.count()) == snapshot


def test_a_failing_row_rolls_back_its_numbers_and_never_blocks_the_rest(org, account, plan, clock):
    """A real fault inside a batch (an amount too large for the database) fails only that
    subscription; the batch's other invoices are made with consecutive numbers, and once the row
    is fixed the rerun completes the numbering without a gap or a duplicate."""
    subs = [subscribe(org, account, plan) for _ in range(3)]
    huge = make_plan(org, amount=100, name="Broken")
    bad = subscribe(org, account, huge, quantity=4)
    subs += [subscribe(org, account, plan) for _ in range(3)]
    # Broken once the subscriptions exist (creating them would already fail: their MRR enters the ledger).
    Plan.objects.filter(pk=huge.pk).update(amount=2 ** 62)
    run = invoice(utc(2026, 3, 1, 13))
    assert (run.status, run.items_done, run.items_failed) == ("partial", 6, 1)
    assert FailedItem.objects.get(job_name="invoice-generation").item_key == str(bad.pk)
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [1, 2, 3, 4, 5, 6]
    Plan.objects.filter(pk=huge.pk).update(amount=100)
    run = invoice(utc(2026, 3, 1, 14))
    assert (run.status, run.items_done) == ("succeeded", 1)
    assert sorted(Invoice.objects.values_list("number", flat=True)) == [1, 2, 3, 4, 5, 6, 7]
    assert invoices_of(bad)[0].number == 7 and invoices_of(bad)[0].subtotal == 400
    assert InvoiceNumberSequence.objects.get(organization=org).last_number == 7
