"""Subscriptions: create, change, cancel, confirm a renewal, resume. Services never commit: callers do.

Validation happens before any write, so a rejected request changes nothing.
"""

from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q

from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.services import redeem_coupon
from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.events.services import record_event
from cobrador.subscriptions.errors import (
    BillingAccountNotActive,
    SubscriptionCancelScheduled,
    SubscriptionCommitted,
    SubscriptionNotLive,
    SubscriptionNotPromptRenewal,
    SubscriptionNotResumable,
    SubscriptionNotRunning,
)
from cobrador.subscriptions.models import Subscription, SubscriptionSettings
from cobrador.subscriptions.periods import add_months, period_end

# Statuses in which a subscription still runs (renews, can be changed or canceled).
LIVE_STATUSES = ("trialing", "active", "past_due", "paused")
MAX_UNIT_AMOUNT = 10**12
MAX_TRIAL_DAYS = 730
MAX_COMMITMENT_MONTHS = 120
# What scheduling or withdrawing a cancellation changes.
CANCELLATION_FIELDS = ["cancellation_reason", "canceled_at", "cancel_at", "cancel_at_period_end", "updated_at"]


# --- the organization's subscription policy --------------------------------------------------------------


def renewal_prompt_days(organization) -> int:
    """Days before a prompt-mode term ends that subscription.renewal_prompted goes out."""
    found = SubscriptionSettings.objects.filter(organization=organization).values_list(
        "renewal_prompt_days", flat=True).first()
    return settings.RENEWAL_PROMPT_DAYS if found is None else found


def set_renewal_prompt_days(*, organization, days: int) -> None:
    """Inside the caller's transaction; the caller validated the range."""
    SubscriptionSettings.objects.update_or_create(
        organization=organization, defaults={"renewal_prompt_days": days, "updated_at": clock.now()})


def _utc(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC) if moment is not None else None


def _id(obj) -> str | None:
    return obj.public_id if obj is not None else None


def subscription_data(subscription: Subscription) -> dict:
    """The subscription as the API returns it (and as events carry it)."""
    s = subscription
    return {
        "id": s.public_id,
        "object": "subscription",
        "account": s.account.public_id,
        "plan": s.plan.public_id,
        "quantity": s.quantity,
        "unit_amount": s.unit_amount,
        "coupon": _id(s.coupon),
        "coupon_periods_used": s.coupon_periods_used,
        "payment_method": _id(s.payment_method),
        "status": s.status,
        "started_at": s.started_at,
        "trial_end": s.trial_end,
        "current_period_start": s.current_period_start,
        "current_period_end": s.current_period_end,
        "billing_anchor_day": s.billing_anchor_day,
        "commitment_months": s.commitment_months,
        "commitment_end": s.commitment_end,
        "renewal_mode": s.renewal_mode,
        "renewal_confirmed_at": s.renewal_confirmed_at,
        "renewal_prompted_at": s.renewal_prompted_at,
        "cancel_at_period_end": s.cancel_at_period_end,
        "cancel_at": s.cancel_at,
        "cancellation_reason": s.cancellation_reason,
        "canceled_at": s.canceled_at,
        "ended_at": s.ended_at,
        "pending_plan": _id(s.pending_plan),
        "pending_quantity": s.pending_quantity,
        "metadata": s.metadata,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _emit(subscription: Subscription, type_: str) -> None:
    record_event(organization=subscription.organization, type=type_, data=subscription_data(subscription))


# --- lookups that turn body ids into rows (422 naming the field: a bad id in a body is bad input) ---


def _account(organization, account_id: str) -> BillingAccount:
    account = BillingAccount.objects.filter(organization=organization, public_id=account_id).first()
    if account is None:
        raise ValidationFailed(f"no billing account {account_id!r}", field="account")
    return account


def _plan(organization, plan_id: str) -> Plan:
    plan = Plan.objects.filter(organization=organization, public_id=plan_id).first()
    if plan is None:
        raise ValidationFailed(f"no plan {plan_id!r}", field="plan")
    if not plan.active:
        raise ValidationFailed(f"plan {plan_id!r} is archived", field="plan")
    return plan


def _coupon(organization, code_or_id: str) -> Coupon:
    coupon = (Coupon.objects.filter(organization=organization)
              .filter(Q(public_id=code_or_id) | Q(code=code_or_id)).first())
    if coupon is None:
        raise ValidationFailed(f"no coupon {code_or_id!r}", field="coupon")
    return coupon


def _payment_method(account: BillingAccount, payment_method_id: str) -> PaymentMethod:
    method = PaymentMethod.objects.filter(account=account, public_id=payment_method_id, status="active").first()
    if method is None:
        raise ValidationFailed(f"no active payment method {payment_method_id!r} on this account",
                               field="payment_method")
    return method


def default_payment_method(account: BillingAccount) -> PaymentMethod | None:
    return PaymentMethod.objects.filter(account=account, is_default=True, status="active").first()


def _check_commitment(commitment_months: int, renewal_mode: str, plan: Plan, field: str) -> None:
    if not 0 <= commitment_months <= MAX_COMMITMENT_MONTHS:
        raise ValidationFailed(f"commitment_months must be 0-{MAX_COMMITMENT_MONTHS}", field="commitment_months")
    if commitment_months % plan.months_per_period:
        raise ValidationFailed(
            f"commitment_months ({commitment_months}) must be a whole number of the plan's "
            f"{plan.months_per_period}-month periods", field=field)
    if renewal_mode == "prompt" and not commitment_months:
        raise ValidationFailed("prompt renewal needs a term: set commitment_months", field="renewal_mode")


# --- use cases ---------------------------------------------------------------------------------


def create_subscription(*, organization, account: str, plan: str, quantity: int = 1, coupon: str | None = None,
                        payment_method: str | None = None, trial_days: int | None = None,
                        trial_end: datetime | None = None, commitment_months: int = 0,
                        renewal_mode: str = "auto", start: datetime | None = None,
                        metadata: dict | None = None, unit_amount: int | None = None) -> Subscription:
    now = clock.now()
    start, trial_end = _utc(start) or now, _utc(trial_end)
    billing_account = _account(organization, account)
    the_plan = _plan(organization, plan)
    if quantity < 1:
        raise ValidationFailed("quantity must be at least 1", field="quantity")
    if unit_amount is not None and not 0 <= unit_amount <= MAX_UNIT_AMOUNT:
        raise ValidationFailed(f"unit_amount must be 0-{MAX_UNIT_AMOUNT} minor units", field="unit_amount")
    if billing_account.status != "active":
        raise BillingAccountNotActive(f"billing account {account} is {billing_account.status}", field="account")
    method = (_payment_method(billing_account, payment_method) if payment_method
              else default_payment_method(billing_account))
    if trial_days is not None and trial_end is not None:
        raise ValidationFailed("give trial_days or trial_end, not both", field="trial_end")
    if trial_end is None:
        days = the_plan.trial_days if trial_days is None else trial_days
        if not 0 <= days <= MAX_TRIAL_DAYS:
            raise ValidationFailed(f"trial_days must be 0-{MAX_TRIAL_DAYS}", field="trial_days")
        trial_end = start + timedelta(days=days) if days else None
    elif not start < trial_end <= start + timedelta(days=MAX_TRIAL_DAYS):
        raise ValidationFailed(f"trial_end must be after the start and within {MAX_TRIAL_DAYS} days of it",
                               field="trial_end")
    _check_commitment(commitment_months, renewal_mode, the_plan, field="commitment_months")
    the_coupon = _coupon(organization, coupon) if coupon else None

    paid_start = trial_end or start
    anchor = paid_start.day
    if trial_end:
        status, period = "trialing", (start, trial_end)
    else:
        status, period = "active", (start, period_end(start, months=the_plan.months_per_period, anchor_day=anchor))
    if the_coupon is not None:
        redeem_coupon(coupon=the_coupon, plan=the_plan, as_of=now)
    subscription = Subscription.objects.create(
        organization=organization, account=billing_account, plan=the_plan, quantity=quantity, coupon=the_coupon,
        payment_method=method, status=status, trial_end=trial_end, started_at=start,
        current_period_start=period[0], current_period_end=period[1], billing_anchor_day=anchor,
        commitment_months=commitment_months,
        commitment_end=add_months(paid_start, commitment_months, anchor) if commitment_months else None,
        renewal_mode=renewal_mode, metadata=metadata or {}, unit_amount=unit_amount, created_at=now, updated_at=now)
    _emit(subscription, "subscription.created")
    return subscription


def _require_live(subscription: Subscription) -> None:
    if subscription.status not in LIVE_STATUSES:
        raise SubscriptionNotLive(f"the subscription is {subscription.status}", field="status")


def update_subscription(*, subscription: Subscription, changes: dict, at_once: bool = False) -> Subscription:
    """`changes` may hold quantity, plan (plan_ id), renewal_mode, payment_method (pm_ id), metadata.
    A new plan or quantity waits in pending_* until the next period starts; with `at_once` it applies
    now (and withdraws any pending change): the caller invoices the rest of the period (proration)."""
    _require_live(subscription)
    if at_once and subscription.status == "paused":
        raise SubscriptionNotRunning("a paused subscription has no running period to change at once; resume it "
                                     "first", field="proration")
    organization = subscription.organization
    new_plan = _plan(organization, changes["plan"]) if changes.get("plan") is not None else None
    quantity = changes.get("quantity")
    if quantity is not None and quantity < 1:
        raise ValidationFailed("quantity must be at least 1", field="quantity")
    if new_plan is not None and new_plan.currency != subscription.plan.currency:
        raise ValidationFailed(f"the new plan bills in {new_plan.currency}, the subscription in "
                               f"{subscription.plan.currency}", field="plan")
    renewal_mode = changes.get("renewal_mode") or subscription.renewal_mode
    _check_commitment(subscription.commitment_months, renewal_mode, new_plan or subscription.plan,
                      field="plan" if new_plan is not None else "renewal_mode")
    method = (_payment_method(subscription.account, changes["payment_method"])
              if changes.get("payment_method") is not None else None)

    before = subscription_data(subscription)
    if at_once and (new_plan is not None or quantity is not None):
        if new_plan is not None:
            subscription.unit_amount = subscription.unit_amount if new_plan.pk == subscription.plan_id else None
            subscription.plan = new_plan
        if quantity is not None:
            subscription.quantity = quantity
        subscription.pending_plan, subscription.pending_quantity = None, None
    if not at_once and new_plan is not None:
        subscription.pending_plan = None if new_plan.pk == subscription.plan_id else new_plan
    if not at_once and quantity is not None:
        subscription.pending_quantity = None if quantity == subscription.quantity else quantity
    subscription.renewal_mode = renewal_mode
    if method is not None:
        subscription.payment_method = method
    if changes.get("metadata") is not None:
        subscription.metadata = changes["metadata"]
    if subscription_data(subscription) != before:
        subscription.updated_at = clock.now()
        subscription.save(update_fields=["plan", "quantity", "unit_amount", "pending_plan", "pending_quantity",
                                         "renewal_mode", "payment_method", "metadata", "updated_at"])
        _emit(subscription, "subscription.updated")
    return subscription


def cancel_subscription(*, subscription: Subscription, immediately: bool = False,
                        cancel_at: datetime | None = None, reason: str = "") -> Subscription:
    """At the end of the current period by default (a trial: at its end); `immediately`; or at
    `cancel_at`. A paid subscription under a commitment can only end at commitment_end or later."""
    _require_live(subscription)
    now = clock.now()
    cancel_at = _utc(cancel_at)
    if immediately and cancel_at is not None:
        raise ValidationFailed("give immediately or cancel_at, not both", field="cancel_at")
    if cancel_at is not None and cancel_at <= now:
        raise ValidationFailed("cancel_at must be in the future", field="cancel_at")
    committed_until = subscription.commitment_end
    under_commitment = (subscription.status != "trialing" and committed_until is not None
                        and committed_until > now)
    if under_commitment:
        if immediately or (cancel_at is not None and cancel_at < committed_until):
            raise SubscriptionCommitted(f"the subscription is committed until {committed_until.isoformat()}; it can be "
                                        f"canceled from then on", field="cancel_at" if cancel_at else "immediately")
        cancel_at = cancel_at or committed_until
    elif subscription.status == "paused" and cancel_at is None:
        immediately = True  # a paused subscription has no running period to finish
    elif not immediately and cancel_at is None:
        # A period that already ended (the sweep has not run yet) ends the subscription at that end.
        cancel_at = subscription.current_period_end

    subscription.cancellation_reason = reason
    subscription.canceled_at = now
    subscription.updated_at = now
    if immediately:
        subscription.status = "canceled"
        subscription.ended_at = now
        subscription.cancel_at = now
        subscription.cancel_at_period_end = False
        subscription.save(update_fields=[*CANCELLATION_FIELDS, "status", "ended_at"])
        _emit(subscription, "subscription.canceled")
    else:
        subscription.cancel_at = cancel_at
        subscription.cancel_at_period_end = cancel_at == subscription.current_period_end
        subscription.save(update_fields=CANCELLATION_FIELDS)
        _emit(subscription, "subscription.updated")
    return subscription


def confirm_renewal(*, subscription: Subscription) -> Subscription:
    """Prompt mode: the customer agrees to renew at the end of the current term."""
    if subscription.renewal_mode != "prompt":
        raise SubscriptionNotPromptRenewal("only prompt-mode subscriptions need a confirmed renewal",
                                           field="renewal_mode")
    if subscription.status not in ("trialing", "active", "past_due"):
        raise SubscriptionNotLive(f"the subscription is {subscription.status}", field="status")
    if subscription.cancel_at is not None:
        raise SubscriptionCancelScheduled("the subscription is scheduled to cancel; resume it first", field="cancel_at")
    if subscription.renewal_confirmed_at is None:
        now = clock.now()
        subscription.renewal_confirmed_at = now
        subscription.updated_at = now
        subscription.save(update_fields=["renewal_confirmed_at", "updated_at"])
        _emit(subscription, "subscription.updated")
    return subscription


def resume_subscription(*, subscription: Subscription, payment_method: str | None = None) -> Subscription:
    """A paused subscription starts a new paid period now (anchored on today) with a payment method
    (given, already on the subscription, or the account's default). A subscription with a scheduled
    cancellation keeps running: the cancellation is withdrawn."""
    now = clock.now()
    if subscription.status == "paused":
        if payment_method is not None:
            method = _payment_method(subscription.account, payment_method)
        elif subscription.payment_method is not None and subscription.payment_method.status == "active":
            method = subscription.payment_method
        else:
            method = default_payment_method(subscription.account)
        if method is None:
            raise ValidationFailed("the account has no payment method; attach one or pass payment_method",
                                   field="payment_method")
        plan = subscription.pending_plan or subscription.plan
        if plan.pk != subscription.plan_id:
            subscription.unit_amount = None  # the agreed price was for the other plan
        subscription.plan = plan
        subscription.quantity = subscription.pending_quantity or subscription.quantity
        subscription.pending_plan, subscription.pending_quantity = None, None
        subscription.payment_method = method
        subscription.status = "active"
        subscription.billing_anchor_day = now.day
        subscription.current_period_start = now
        subscription.current_period_end = period_end(now, months=plan.months_per_period, anchor_day=now.day)
        if subscription.commitment_months:
            subscription.commitment_end = add_months(now, subscription.commitment_months, now.day)
            subscription.renewal_confirmed_at = subscription.renewal_prompted_at = None
        subscription.cancel_at, subscription.cancel_at_period_end = None, False
        subscription.uninvoiced_since = None
        subscription.updated_at = now
        subscription.save(update_fields=[
            "plan", "quantity", "unit_amount", "pending_plan", "pending_quantity", "payment_method", "status",
            "billing_anchor_day",
            "current_period_start", "current_period_end", "commitment_end", "renewal_confirmed_at",
            "renewal_prompted_at", "cancel_at", "cancel_at_period_end", "uninvoiced_since", "updated_at"])
        _emit(subscription, "subscription.resumed")
        return subscription
    if subscription.status in ("trialing", "active", "past_due") and subscription.cancel_at is not None:
        subscription.cancel_at, subscription.cancel_at_period_end = None, False
        subscription.cancellation_reason = ""
        subscription.canceled_at = None
        subscription.updated_at = now
        subscription.save(update_fields=CANCELLATION_FIELDS)
        _emit(subscription, "subscription.resumed")
        return subscription
    raise SubscriptionNotResumable(f"nothing to resume: the subscription is {subscription.status} with no scheduled "
                                   f"cancellation", field="status")
