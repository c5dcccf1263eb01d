"""The `subscription-renewal` job (0 0 * * *): everything subscriptions owe to the passage of time.

Four steps, in this order, each decided by timestamps against `run.as_of`:

1. scheduled cancellations that are due (`cancel_at <= as_of`): canceled; no renewal, no invoice;
2. trials that ended: with a payment method the first paid period starts at trial_end, without
   one the subscription is paused;
3. terms (commitments) that ended: auto mode starts a new term; prompt mode renews only if the
   customer confirmed, otherwise the subscription expires. Then subscription.renewal_prompted goes
   out once per term, the organization's renewal_prompt_days before a prompt-mode term ends;
4. every elapsed period is advanced, one subscription.renewed per period (a sweep that missed days
   advances every missed period once; periods left before they were invoiced are remembered in
   `uninvoiced_since`, so invoice generation bills each of them once).

Each step selects its due ids with one indexed query and handles them in batches, one transaction
per batch. A batch re-reads its rows under a row lock with the same due condition, so a concurrent
or repeated run finds nothing left to do.
"""

from datetime import timedelta

from django.conf import settings
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import update_rows
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.events.services import EventDraft, record_events
from cobrador.invoicing.models import Invoice
from cobrador.organizations.services import attach_organizations
from cobrador.subscriptions.models import Subscription, SubscriptionSettings
from cobrador.subscriptions.periods import add_months, period_end
from cobrador.subscriptions.services import LIVE_STATUSES, subscription_data

BATCH_SIZE = 1000
RUNNING = ("active", "past_due")


def _unneeded(relation: str, model, needed: set[str]) -> list[str]:
    return [f"{relation}__{field.name}" for field in model._meta.concrete_fields
            if field.name not in needed | {"id", "public_id"}]


# Events need only the public ids of the account and payment method: skip loading the rest.
_DEFERRED = (_unneeded("account", BillingAccount, set())
             + _unneeded("payment_method", PaymentMethod, {"status", "account"}))


def _load(ids, condition: Q) -> list[Subscription]:
    subscriptions = list(
        Subscription.objects.select_for_update(of=("self",))
        .select_related("account", "plan", "coupon", "payment_method", "pending_plan").defer(*_DEFERRED)
        .filter(condition, pk__in=ids).order_by("pk"))
    attach_organizations(subscriptions)
    return subscriptions


def _step(run, condition: Q, handle) -> None:
    ids = list(Subscription.objects.filter(condition).order_by("pk").values_list("pk", flat=True))
    run.process(ids, lambda batch: handle(_load(batch, condition), run), batch_size=BATCH_SIZE)


def _event(subscription: Subscription, type_: str) -> EventDraft:
    return EventDraft(subscription.organization, type_, subscription_data(subscription))


def _apply_pending_changes(subscription: Subscription) -> bool:
    """A plan or quantity change waits for the next period; returns whether there was one."""
    changed = False
    if subscription.pending_plan_id is not None:
        if subscription.pending_plan_id != subscription.plan_id:
            subscription.unit_amount = None  # an agreed price belongs to the plan it was agreed for
        subscription.plan = subscription.pending_plan
        subscription.pending_plan = None
        changed = True
    if subscription.pending_quantity is not None:
        subscription.quantity = subscription.pending_quantity
        subscription.pending_quantity = None
        changed = True
    return changed


PLAN_FIELDS = ["plan", "quantity", "unit_amount", "pending_plan", "pending_quantity"]


# --- 1. scheduled cancellations ----------------------------------------------------------------


def cancel_due(subscriptions: list[Subscription], run) -> None:
    now = clock.now()
    for subscription in subscriptions:
        subscription.status = "canceled"
        subscription.ended_at = subscription.cancel_at
        subscription.updated_at = now
    update_rows(subscriptions, ["status", "ended_at", "updated_at"])
    record_events(_event(s, "subscription.canceled") for s in subscriptions)
    run.count("canceled", len(subscriptions))


# --- 2. trials that ended ----------------------------------------------------------------------


def end_trials(subscriptions: list[Subscription], run) -> None:
    now = clock.now()
    defaults = {pm.account_id: pm for pm in PaymentMethod.objects.filter(
        account_id__in={s.account_id for s in subscriptions}, is_default=True, status="active")}
    events = []
    for subscription in subscriptions:
        method = subscription.payment_method
        if method is None or method.status != "active":
            method = defaults.get(subscription.account_id)
        subscription.updated_at = now
        if method is None:
            subscription.status = "paused"
            events.append(_event(subscription, "subscription.paused"))
            run.count("paused_without_payment_method")
            continue
        _apply_pending_changes(subscription)
        subscription.payment_method = method
        subscription.status = "active"
        subscription.current_period_start = subscription.trial_end
        subscription.current_period_end = period_end(subscription.trial_end, months=subscription.plan.months_per_period,
                                                     anchor_day=subscription.billing_anchor_day)
        events.append(_event(subscription, "subscription.updated"))
        run.count("trials_converted")
    update_rows(subscriptions, ["status", "payment_method", *PLAN_FIELDS, "current_period_start",
                                                     "current_period_end", "updated_at"])
    record_events(events)


# --- 3. terms ----------------------------------------------------------------------------------


def end_terms(subscriptions: list[Subscription], run) -> None:
    as_of, now = run.as_of, clock.now()
    events = []
    for subscription in subscriptions:
        subscription.updated_at = now
        if subscription.renewal_mode == "prompt" and subscription.renewal_confirmed_at is None:
            subscription.status = "expired"
            subscription.ended_at = subscription.commitment_end
            events.append(_event(subscription, "subscription.expired"))
            run.count("expired")
            continue
        while subscription.commitment_end <= as_of:
            subscription.commitment_end = add_months(subscription.commitment_end, subscription.commitment_months,
                                                     subscription.billing_anchor_day)
        subscription.renewal_confirmed_at = subscription.renewal_prompted_at = None
        events.append(_event(subscription, "subscription.updated"))
        run.count("terms_renewed")
    update_rows(subscriptions, ["status", "ended_at", "commitment_end", "renewal_confirmed_at",
                                                     "renewal_prompted_at", "updated_at"])
    record_events(events)


def prompt_renewals(subscriptions: list[Subscription], run) -> None:
    now = clock.now()
    for subscription in subscriptions:
        subscription.renewal_prompted_at = run.as_of
        subscription.updated_at = now
    update_rows(subscriptions, ["renewal_prompted_at", "updated_at"])
    record_events(_event(s, "subscription.renewal_prompted") for s in subscriptions)
    run.count("renewal_prompted", len(subscriptions))


# --- 4. periods --------------------------------------------------------------------------------


def advance_periods(subscriptions: list[Subscription], run) -> None:
    as_of, now = run.as_of, clock.now()
    starts = {s.current_period_start for s in subscriptions}
    invoiced = set(Invoice.objects.filter(subscription_id__in=[s.pk for s in subscriptions],
                                          period_start__in=starts).values_list("subscription_id", "period_start"))
    events, plan_changed, missed = [], False, False
    for subscription in subscriptions:
        leaving_invoiced = (subscription.pk, subscription.current_period_start) in invoiced
        first = True
        while subscription.current_period_end <= as_of:
            if not leaving_invoiced and subscription.uninvoiced_since is None:
                subscription.uninvoiced_since = subscription.current_period_start
                missed = True
            leaving_invoiced = False
            if first:
                plan_changed |= _apply_pending_changes(subscription)
                first = False
            start = subscription.current_period_end
            subscription.current_period_start = start
            subscription.current_period_end = period_end(start, months=subscription.plan.months_per_period,
                                                         anchor_day=subscription.billing_anchor_day)
            subscription.updated_at = now
            events.append(_event(subscription, "subscription.renewed"))
    fields = ["current_period_start", "current_period_end", "updated_at"]
    fields += PLAN_FIELDS if plan_changed else []
    fields += ["uninvoiced_since"] if missed else []
    update_rows(subscriptions, fields)
    record_events(events)
    run.count("periods_advanced", len(events))


def _within_prompt_window(as_of) -> Q:
    """Terms ending within their organization's renewal_prompt_days (SubscriptionSettings, served in
    /v1/organizations/settings/notifications), or COBRADOR_RENEWAL_PROMPT_DAYS where it was never set."""
    orgs_by_days: dict[int, list[int]] = {}
    for org_id, days in SubscriptionSettings.objects.values_list("organization_id", "renewal_prompt_days"):
        orgs_by_days.setdefault(days, []).append(org_id)
    configured = [org_id for org_ids in orgs_by_days.values() for org_id in org_ids]
    window = ~Q(organization_id__in=configured) & Q(
        commitment_end__lte=as_of + timedelta(days=settings.RENEWAL_PROMPT_DAYS))
    for days, org_ids in orgs_by_days.items():
        window |= Q(organization_id__in=org_ids, commitment_end__lte=as_of + timedelta(days=days))
    return window


def subscription_renewal_sweep(run) -> None:
    as_of = run.as_of
    _step(run, Q(status__in=LIVE_STATUSES, cancel_at__lte=as_of), cancel_due)
    _step(run, Q(status="trialing", trial_end__lte=as_of), end_trials)
    _step(run, Q(status__in=RUNNING, commitment_months__gt=0, commitment_end__lte=as_of), end_terms)
    _step(run, Q(status__in=RUNNING, renewal_mode="prompt", renewal_prompted_at__isnull=True,
                 renewal_confirmed_at__isnull=True, cancel_at__isnull=True,
                 commitment_end__gt=as_of) & _within_prompt_window(as_of), prompt_renewals)
    _step(run, Q(status__in=RUNNING, current_period_end__lte=as_of), advance_periods)
