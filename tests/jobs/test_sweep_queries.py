"""Each scheduled sweep makes the same number of queries for N due items as for 2N (both within one
batch): its work is done in bulk, so an N+1 cannot creep in unseen.

Every test builds due items in rounds: a warm-up round (per-process caches fill), then N, then 2N, each run
by the real job runner. Items of an earlier round are never due again in a later one."""

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from cobrador.callbacks import processing, receiving
from cobrador.callbacks.models import GatewayCallback
from cobrador.core import clock
from cobrador.events.services import record_event
from cobrador.jobs.runner import run_job
from cobrador.organizations.models import DunningConfig
from cobrador.payments import charging
from cobrador.webhooks.services import create_endpoint
from tests.factories import failed_invoices, make_org
from tests.gateways.conftest import make_config
from tests.notifications.conftest import emit_invoice_created, make_card, smtp  # noqa: F401  (a fixture)
from tests.notifications.conftest import make_account as make_notified_account
from tests.notifications.conftest import make_invoice as make_invoice_due
from tests.payments.billing import add_card, make_account, make_invoice
from tests.subscriptions.conftest import make_plan, subscribe

N = 3
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _run(job: str, as_of: datetime) -> tuple[int, int]:
    """(queries, items the run reports) of one run of `job` with the clock at `as_of`."""
    clock.set(as_of)
    with CaptureQueriesContext(connection) as queries:
        run = run_job(job, as_of=as_of)
    assert run.status in ("succeeded", "partial"), run.error  # partial: items that failed again, counted
    return len(queries), sum(run.counts.values())


def assert_flat(job: str, build, at, *, per_item: int = 0, n: int = N) -> None:
    """`build(round, n)` makes n items due at `at(round)`. `per_item`: queries each item costs by design."""
    results = []
    for round_, size in enumerate([n, n, 2 * n]):
        build(round_, size)
        results.append(_run(job, at(round_)))
    (_, _), (few, done_few), (many, done_many) = results
    assert done_many > done_few > 0, results
    assert many - few == per_item * n, f"{job}: {few} queries for {n} items, {many} for {2 * n}"


@pytest.fixture
def org(db):
    return make_org("Quanta", "test").organization


def test_subscription_renewal(org):
    plan = make_plan(org)

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            subscribe(org, make_account(org, name=f"R{round_}-{i}"), plan)
    assert_flat("subscription-renewal", build, lambda round_: T0 + timedelta(days=32))


def test_invoice_generation(org):
    plan = make_plan(org)

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            account = make_account(org, name=f"G{round_}-{i}")
            add_card(account)
            subscribe(org, account, plan)
    assert_flat("invoice-generation", build, lambda round_: T0 + timedelta(hours=1))


def test_invoice_charging(org):
    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            account = make_account(org, name=f"C{round_}-{i}")
            add_card(account)
            make_invoice(account)
    assert_flat("invoice-charging", build, lambda round_: T0 + timedelta(hours=1))


def test_payment_reconciliation(org):
    def build(round_, n):
        clock.set(T0 + timedelta(hours=round_))
        for i in range(n):
            account = make_account(org, name=f"P{round_}-{i}")
            add_card(account, "tok_sandbox_timeout")
            make_invoice(account)
        assert charging.charge_open_invoices() == {"unknown": n}
    # By design, per payment: its own savepoint (2: one bad answer never blocks the rest), the provider's
    # answer (1: the sandbox reads its charge row where a real provider answers one HTTP call), and the
    # payment's and its invoice's rows written inside that savepoint (2).
    assert_flat("payment-reconciliation", build, lambda round_: T0 + timedelta(hours=round_, minutes=5),
                per_item=5)


def test_card_expiring(org):
    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            make_card(make_notified_account(org, name=f"E{round_}-{i}"), exp_month=3, exp_year=2026,
                      token=f"tok_{round_}{i}")
    # Within card_expiring_days (30) of the end of March.
    assert_flat("card-expiring", build, lambda round_: T0 + timedelta(days=2))


def test_trial_ending(org):
    plan = make_plan(org, trial_days=3)

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            subscribe(org, make_account(org, name=f"T{round_}-{i}"), plan)
    assert_flat("trial-ending", build, lambda round_: T0 + timedelta(hours=1))


def test_invoice_reminders(org):
    numbers = iter(range(1, 1000))

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            make_invoice_due(make_notified_account(org, name=f"I{round_}-{i}"), number=next(numbers),
                             due_date=(T0 + timedelta(days=3)).date())
    assert_flat("invoice-reminders", build, lambda round_: T0 + timedelta(hours=1))


def test_notification_delivery(org, smtp):  # noqa: F811
    numbers = iter(range(1, 1000))

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            account = make_notified_account(org, name=f"N{round_}-{i}")
            emit_invoice_created(make_invoice_due(account, number=next(numbers)))
    assert_flat("notification-delivery", build, lambda round_: T0 + timedelta(minutes=1))


def test_webhook_delivery(org, receiver):
    with transaction.atomic():
        create_endpoint(organization=org, url=receiver.url, enabled_events=["*"])

    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            with transaction.atomic():
                record_event(organization=org, type="dunning_config.updated", data={"n": i})
    assert_flat("webhook-delivery", build, lambda round_: T0 + timedelta(minutes=1))


def test_retention_cleanup(org):
    def build(round_, n):
        clock.set(T0)
        for i in range(n):
            with transaction.atomic():
                record_event(organization=org, type="dunning_config.updated", data={"n": i})
    assert_flat("retention-cleanup", build, lambda round_: T0 + timedelta(days=91))


def test_payment_retry(db):
    """Each round in an organization of its own, whose first retries are due at the same time."""
    def build(round_, n):
        clock.set(T0)
        failed_invoices(make_org(f"Retry{round_}", "test").organization, n)
    assert_flat("payment-retry", build, lambda round_: T0 + timedelta(days=1, hours=6))


def test_suspension_check(db):
    """Each round in an organization of its own that suspends without retrying, after 3 days of grace."""
    def build(round_, n):
        clock.set(T0)
        organization = make_org(f"Suspend{round_}", "test").organization
        DunningConfig.objects.filter(organization=organization).update(
            auto_retry_enabled=False, suspend_after_retries=True, grace_period_days=3)
        failed_invoices(organization, n)
    assert_flat("suspension-check", build, lambda round_: T0 + timedelta(days=3, hours=2))


def test_callback_retry(db, settings):
    """Callbacks naming charges we do not know fail, and are retried a minute later. Each round's fail
    again then; they are set aside so that only the new round's are due."""
    settings.KOBANA_BASE_URL = "http://127.0.0.1:9"  # nothing listens: no call may leave the machine
    organization = make_org("Hooks", "test").organization
    config = make_config(organization, "kobana", ["bank_slip"], {"api_token": "t", "webhook_secret": "s3cret",
                                                                 "pix_account_uid": "u"})

    def build(round_, n):
        GatewayCallback.objects.update(status="ignored")
        clock.set(T0 + timedelta(hours=round_))
        for i in range(n):
            body = json.dumps({"event_code": "bank_billet.paid", "object": {
                "id": 9000 + 10 * round_ + i, "status": "paid", "amount": 10, "paid_amount": 10,
                "paid_at": "2026-03-01", "external_id": f"pay_unknown_{round_}_{i}"}}).encode()
            headers = {"x-kobana-event": "bank_billet.paid", "x-kobana-delivery-id": f"d{round_}-{i}",
                       "x-kobana-signature": "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()}
            receiving.receive_callback(provider="kobana", token=config.callback_token, headers=headers, body=body)
        assert processing.process_received().counts == {"failed": n}
    # On SQLite a transaction takes processing.FIRST_SLICE callbacks first: 2N stays within one.
    assert_flat("callback-retry", build, lambda round_: T0 + timedelta(hours=round_, minutes=1),
                n=processing.FIRST_SLICE // 2)
