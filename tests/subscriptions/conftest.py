"""Factories for subscription and invoicing tests: rows made with the ORM and our services, no mocks."""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import transaction

from cobrador.catalog.models import Coupon, Plan
from cobrador.core import clock
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.events.models import Event
from cobrador.jobs.runner import run_job
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import create_subscription


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def make_account(organization, *, name="Maria Souza", card=True) -> BillingAccount:
    now = clock.now()
    account = BillingAccount.objects.create(organization=organization, name=name, email="maria@example.com",
                                            created_at=now, updated_at=now)
    if card:
        add_card(account)
    return account


def add_card(account, *, default=True) -> PaymentMethod:
    return PaymentMethod.objects.create(organization_id=account.organization_id, account=account, type="card",
                                        card_brand="visa", card_last4="4242", exp_month=12, exp_year=2040,
                                        gateway_token="tok", is_default=default, created_at=clock.now())


def make_plan(organization, *, amount=10000, interval="month", interval_count=1, trial_days=0, currency="BRL",
              name="Pro") -> Plan:
    return Plan.objects.create(organization=organization, name=name, amount=amount, currency=currency,
                               interval=interval, interval_count=interval_count, trial_days=trial_days,
                               created_at=clock.now())


def make_coupon(organization, *, code="WELCOME", percent_off=None, amount_off=None, duration="once",
                duration_in_periods=None, plans=(), currency="BRL") -> Coupon:
    coupon = Coupon.objects.create(
        organization=organization, code=code, duration=duration, duration_in_periods=duration_in_periods,
        percent_off=Decimal(str(percent_off)) if percent_off is not None else None, amount_off=amount_off,
        currency=currency if amount_off is not None else "", created_at=clock.now())
    coupon.plans.set(plans)
    return coupon


def subscribe(organization, account, plan, **kwargs) -> Subscription:
    with transaction.atomic():
        subscription = create_subscription(organization=organization, account=account.public_id,
                                           plan=plan.public_id, **kwargs)
    return Subscription.objects.select_related("plan", "account").get(pk=subscription.pk)


def refresh(subscription) -> Subscription:
    return Subscription.objects.select_related("plan", "account").get(pk=subscription.pk)


def sweep(name: str, at: datetime):
    """Run a job as of `at` with the clock there too (as the scheduler would)."""
    clock.set(at)
    return run_job(name, as_of=at)


def renew(at: datetime):
    return sweep("subscription-renewal", at)


def invoice(at: datetime):
    return sweep("invoice-generation", at)


def events_of(type_: str, subscription=None) -> list[Event]:
    events = Event.objects.filter(type=type_).order_by("pk")
    if subscription is not None:
        events = events.filter(data__id=subscription.public_id)
    return list(events)
