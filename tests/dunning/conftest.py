"""Dunning test helpers: an organization on the sandbox, accounts with CPF and cards, subscriptions made
with the real services, and the scheduled jobs run tick by tick on the frozen clock."""

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django_ox.cron import CronExpression
from django_ox.testing import run_tasks

from cobrador.core import clock
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.events.models import Event
from cobrador.gateways.sandbox import build_sandbox_payment_callback
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.runner import run_job
from cobrador.organizations.models import DunningConfig
from cobrador.payments.charging import charge_queued
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.payments.billing import add_card, make_account
from tests.subscriptions.conftest import make_plan, subscribe

DAY0 = datetime(2026, 3, 1, tzinfo=UTC)
# The jobs a billing day runs, in the order their ticks fall.
BILLING_JOBS = ("subscription-renewal", "invoice-generation", "invoice-charging", "suspension-check", "payment-retry")


def day(n: int, hour: int = 0, minute: int = 0) -> datetime:
    return DAY0 + timedelta(days=n, hours=hour, minutes=minute)


@pytest.fixture
def org(db):
    """A test-mode organization (served by the sandbox) and its API client."""
    return make_org("Cobra", "test")


def configure(organization, **changes) -> DunningConfig:
    config = DunningConfig.objects.get(organization=organization)
    for name, value in changes.items():
        setattr(config, name, value)
    config.save()
    return config


def subscribed_account(organization, *, token="tok_sandbox_decline", document="529.982.247-25", amount=10000):
    """An account with a card (`token`) on a monthly plan starting at the clock's now."""
    account = make_account(organization, document=document)
    if token:
        add_card(account, token)
    plan = make_plan(organization, amount=amount)
    subscription = subscribe(organization, account, plan)
    return account, subscription


def run_jobs_until(end: datetime, jobs=BILLING_JOBS) -> list:
    """Run every tick of `jobs` after the clock's now up to `end`, in time order, with the clock at each
    tick (as the scheduler would); leaves the clock at `end`. Returns the JobRuns."""
    at = clock.now()
    runs = []
    crons = {name: CronExpression(JOBS[name].cron) for name in jobs}
    while True:
        ticks = sorted((crons[name].following(at.replace(tzinfo=None)).replace(tzinfo=UTC), jobs.index(name), name)
                       for name in jobs)
        tick, _, name = ticks[0]
        if tick > end:
            break
        clock.set(tick)
        run = run_job(name, as_of=tick)
        assert run.status == "succeeded", (name, tick, run.error)
        runs.append(run)
        at = tick
    clock.set(end)
    return runs


def failed_first_charge(organization, *, token="tok_sandbox_decline", document="529.982.247-25"):
    """An account whose invoice's first charge failed at day 0 01:05: dunning is open."""
    clock.set(day(0))
    account, subscription = subscribed_account(organization, token=token, document=document)
    run_jobs_until(day(0, 1, 5))
    charge_queued()  # the invoice.created queued it: invoice-charging already charged the invoice
    invoice = subscription.invoices.get()
    assert DunningInvoice.objects.filter(invoice=invoice).exists()
    return account, subscription, invoice


def records(invoice, attempt=None) -> list[tuple]:
    rows = RecoveryRecord.objects.filter(invoice=invoice).order_by("attempt_number", "pk")
    if attempt is not None:
        rows = rows.filter(attempt_number=attempt)
    return list(rows.values_list("attempt_number", "method", "outcome"))


def attempts_by_day(invoice) -> dict[int, list[tuple[str, str]]]:
    """{days after the first failure's date: [(method, outcome), ...]} of the retries (attempt >= 1)."""
    result = {}
    for record in RecoveryRecord.objects.filter(invoice=invoice, attempt_number__gt=0).order_by("attempt_number",
                                                                                              "pk"):
        result.setdefault((record.attempted_at.date() - DAY0.date()).days, []).append((record.method,
                                                                                       record.outcome))
    return result


def pay_by_callback(payment: Payment):
    """The payer pays the sandbox boleto/PIX; its signed callback is received and processed."""
    url, headers, body = build_sandbox_payment_callback(payment)
    response = Client().generic("POST", urlsplit(url).path, data=body, content_type="application/json",
                                headers={k: v for k, v in headers.items() if k.lower() != "content-type"})
    assert response.status_code == 200, response.content
    return run_tasks(raise_failures=True)


def events(organization, *types) -> list[Event]:
    rows = Event.objects.filter(organization=organization).order_by("pk")
    if types:
        rows = rows.filter(type__in=types)
    return list(rows)


def case_of(account) -> DelinquentAccount:
    return DelinquentAccount.objects.filter(account=account).order_by("-pk").first()


def atomic(fn, *args, **kwargs):
    with transaction.atomic():
        return fn(*args, **kwargs)
