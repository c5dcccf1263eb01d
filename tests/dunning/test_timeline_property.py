"""Hypothesis over dunning configs: the preview computed when dunning opens is exactly what the jobs do.

For any policy, with a card that always declines, running the payment-retry and suspension-check jobs
tick by tick makes retry k at the first payment-retry run at or after it is due (interval k after the
run that made retry k-1), walks the methods up to the first boleto/PIX, makes exactly max_retries
retries, says dunning.exhausted once, and suspends at the preview's time (never when the policy says not
to suspend).
"""

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.core import clock
from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.dunning.preview import account_preview
from cobrador.events.models import Event
from cobrador.payments import charging
from tests.dunning.conftest import configure, day, run_jobs_until
from tests.factories import make_org
from tests.payments.billing import add_card, make_account, make_invoice

methods = st.permutations(["card", "bank_slip", "pix"]).flatmap(
    lambda order: st.integers(1, 3).map(lambda n: list(order[:n])))
policies = st.fixed_dictionaries({
    "max_retries": st.integers(0, 5),
    "retry_interval_days": st.lists(st.integers(1, 6), min_size=1, max_size=6),
    "grace_period_days": st.integers(0, 25),
    "suspend_after_retries": st.booleans(),
    "retry_payment_methods": methods,
})


def walk(configured: list[str]) -> list[str]:
    """What an attempt with a declining card and a CPF tries: up to the first boleto/PIX."""
    tried = []
    for method in configured:
        tried.append(method)
        if method != "card":
            break
    return tried


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(policy=policies)
def test_the_preview_at_opening_is_the_timeline_the_jobs_make(db, policy):
    clock.set(day(0, 1))
    try:
        organization = make_org("Prop", "test").organization
        configure(organization, **policy)
        account = make_account(organization)
        add_card(account, "tok_sandbox_decline")
        invoice = make_invoice(account, due_in_days=0)
        clock.set(day(0, 1, 5))
        charging.charge_open_invoices(organization_id=organization.pk)
        assert DunningInvoice.objects.filter(invoice=invoice).exists()

        preview = account_preview(account=account)
        planned = [a for a in preview["invoices"][0]["attempts"] if a["attempt_number"] > 0]
        assert [a["attempt_number"] for a in planned] == list(range(1, policy["max_retries"] + 1))

        horizon = (planned[-1]["at"] if planned else day(0)) + timedelta(days=policy["grace_period_days"] + 2)
        horizon = max(horizon, day(0) + timedelta(days=policy["grace_period_days"] + 2))
        runs = run_jobs_until(horizon, jobs=("suspension-check", "payment-retry"))

        made = {}
        for record in RecoveryRecord.objects.filter(invoice=invoice, attempt_number__gt=0).order_by("pk"):
            made.setdefault(record.attempt_number, (record.attempted_at, []))[1].append(record.method)
        assert made == {a["attempt_number"]: (a["at"], walk(a["methods"])) for a in planned}
        exhausted = Event.objects.filter(organization=organization, type="dunning.exhausted").count()
        assert exhausted == 1

        account = BillingAccount.objects.get(pk=account.pk)
        if policy["suspend_after_retries"]:
            assert account.status == "suspended"
            assert account.suspended_at == preview["suspension_at"]
        else:
            assert preview["suspension_at"] is None and account.status == "active"
            assert not any(r.counts.get("suspended") for r in runs)
    finally:
        # Leave nothing due for the next example's jobs.
        DunningInvoice.objects.update(status="canceled", next_attempt_at=None)
        DelinquentAccount.objects.update(status="written_off")
        clock.set(None)
