from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.catalog.errors import CouponNotRedeemable
from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.invoicing.services import (
    change_subscription_now,
    invoice_current_period,
    invoice_summary,
    latest_invoice_summary,
)
from cobrador.subscriptions import services
from cobrador.subscriptions.errors import (
    BillingAccountNotActive,
    SubscriptionCancelScheduled,
    SubscriptionCommitted,
    SubscriptionNotLive,
    SubscriptionNotPromptRenewal,
    SubscriptionNotResumable,
    SubscriptionNotRunning,
)
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.schemas import (
    SubscriptionCancel,
    SubscriptionCreate,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionResume,
    SubscriptionStatus,
    SubscriptionUpdate,
)

router = Router(tags=["subscriptions"])
register_path_id("subscription_id", Subscription)

RELATED = ("organization", "account", "plan", "coupon", "payment_method", "pending_plan")


def _subscriptions(request):
    return Subscription.objects.filter(organization=request.auth).select_related(*RELATED)


def _locked(request, subscription_id: str) -> Subscription:
    """The subscription, row-locked for the rest of the transaction (the sweeps lock it too)."""
    return get_object_or_404(_subscriptions(request).select_for_update(of=("self",)), public_id=subscription_id)


def _with_latest_invoice(subscription: Subscription) -> dict:
    return {**services.subscription_data(subscription), "latest_invoice": latest_invoice_summary(subscription)}


@router.post("/subscriptions", response={201: SubscriptionOut, **errors(BillingAccountNotActive, CouponNotRedeemable)},
             summary="Create a subscription")
def create_subscription(request, payload: SubscriptionCreate):
    """Without a trial the subscription is `active` and its first period starts at `start` (default
    now). With `first_invoice: now` (the default) and a start not in the future, the first period is
    invoiced in this request (`latest_invoice`, invoice.created) and charged right after it with the
    subscription's payment method (payment.succeeded, invoice.paid; a declined card: the invoice stays
    open in dunning and the subscription `active`, `past_due` once the invoice is overdue). With
    `next_run` the next invoice-generation run invoices it. With a trial it is `trialing` until
    `trial_end`. A coupon is redeemed now; `commitment_months` sets `commitment_end`."""
    fields = payload.model_dump()
    first_invoice = fields.pop("first_invoice")
    invoice = None
    # The invoice comes last: its number locks the organization's number sequence until the commit
    # (on PostgreSQL its sign-ups queue there), so the subscription's events and their sinks (the MRR
    # ledger, webhooks) are done before it, not batched with invoice.created.
    with transaction.atomic():
        subscription = services.create_subscription(organization=request.auth, **fields)
        if first_invoice == "now":
            invoice = invoice_current_period(subscription=subscription)
    # A new subscription's only invoice is the one made here, if any (a trial, a future start, next_run: none).
    return Status(201, {**services.subscription_data(subscription),
                        "latest_invoice": invoice_summary(invoice) if invoice is not None else None})


@router.get("/subscriptions", response=SubscriptionPage, summary="List subscriptions")
def list_subscriptions(request, account: str | None = None, plan: str | None = None,
                       status: SubscriptionStatus | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first; filter by `account` (ba_ id), `plan` (plan_ id) and `status`."""
    subscriptions = _subscriptions(request)
    if account:
        subscriptions = subscriptions.filter(account__public_id=account)
    if plan:
        subscriptions = subscriptions.filter(plan__public_id=plan)
    if status:
        subscriptions = subscriptions.filter(status=status)
    return paginate(subscriptions, cursor=cursor, limit=limit, serialize=services.subscription_data)


@router.get("/subscriptions/{subscription_id}", response=SubscriptionOut, summary="Retrieve a subscription")
def get_subscription(request, subscription_id: str):
    return _with_latest_invoice(get_object_or_404(_subscriptions(request), public_id=subscription_id))


@router.patch("/subscriptions/{subscription_id}",
              response={200: SubscriptionOut, **errors(SubscriptionNotLive, SubscriptionNotRunning)},
              summary="Change a subscription")
def update_subscription(request, subscription_id: str, payload: SubscriptionUpdate):
    """`plan` and `quantity` wait in pending_plan / pending_quantity until the next period starts
    (sending the current value withdraws a pending change), unless `proration` is `now`: then they
    apply at once and the rest of the period is invoiced and charged at once (`latest_invoice`; a
    downgrade's excess credit goes to the account's credit). `renewal_mode`, `payment_method` and
    `metadata` change now. A canceled or expired subscription is a 409, and so is `proration: now`
    on a paused one."""
    changes = payload.model_dump(exclude_unset=True)
    at_once = changes.pop("proration", "none") == "now"
    with transaction.atomic():
        subscription = _locked(request, subscription_id)
        if at_once and ("plan" in changes or "quantity" in changes):
            change_subscription_now(subscription=subscription, changes=changes)
        else:
            services.update_subscription(subscription=subscription, changes=changes)
    return _with_latest_invoice(subscription)


@router.post("/subscriptions/{subscription_id}/cancel",
             response={200: SubscriptionOut, **errors(SubscriptionNotLive, SubscriptionCommitted)},
             summary="Cancel a subscription")
def cancel_subscription(request, subscription_id: str, payload: SubscriptionCancel | None = None):
    """At the end of the current period by default (`cancel_at_period_end`), `immediately`, or at a
    future `cancel_at`. Under a commitment the cancellation is scheduled at `commitment_end`; an
    earlier end is a 409 naming that date. A scheduled cancellation is carried out by the
    subscription-renewal job before any renewal, so the period after it is never invoiced."""
    payload = payload or SubscriptionCancel()
    with transaction.atomic():
        subscription = services.cancel_subscription(subscription=_locked(request, subscription_id),
                                                    **payload.model_dump())
    return services.subscription_data(subscription)


@router.post("/subscriptions/{subscription_id}/confirm_renewal",
             response={200: SubscriptionOut, **errors(SubscriptionNotPromptRenewal, SubscriptionNotLive,
                                                       SubscriptionCancelScheduled)},
             summary="Confirm the renewal of a prompt-mode term")
def confirm_subscription_renewal(request, subscription_id: str):
    """Prompt mode only (409 otherwise): the subscription renews when the current term ends instead
    of expiring. Confirming twice is harmless."""
    with transaction.atomic():
        subscription = services.confirm_renewal(subscription=_locked(request, subscription_id))
    return services.subscription_data(subscription)


@router.post("/subscriptions/{subscription_id}/resume",
             response={200: SubscriptionOut, **errors(SubscriptionNotResumable)}, summary="Resume a subscription")
def resume_subscription(request, subscription_id: str, payload: SubscriptionResume | None = None):
    """A `paused` subscription becomes `active` with a new period starting now (anchored on today's
    day of month); it needs a payment method (given, on the subscription, or the account's default;
    else a 422). On a subscription with a scheduled cancellation, resume withdraws it. Anything else
    is a 409."""
    payload = payload or SubscriptionResume()
    with transaction.atomic():
        subscription = services.resume_subscription(subscription=_locked(request, subscription_id),
                                                    payment_method=payload.payment_method)
    return services.subscription_data(subscription)
