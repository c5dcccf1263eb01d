"""The operator's actions on a billing account's timeline: retry now, replay, unpark, suspend, reactivate.

Each goes through the owning app's services (dunning, webhooks, callbacks, notifications) in one
transaction, is refused with a message when it no longer applies, and leaves an entry in the admin's
history of the object it changed (django.contrib.admin's LogEntry: who, when, what), as the admin's
own changes do. The views (ops/console.py) only ever perform them on a confirmed POST.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.admin.models import CHANGE, LogEntry
from django.db import transaction

from cobrador.callbacks import receiving
from cobrador.callbacks.models import GatewayCallback
from cobrador.core.errors import ApiError
from cobrador.customers.models import BillingAccount
from cobrador.dunning import services as dunning
from cobrador.dunning.models import DunningInvoice
from cobrador.jobs.tasks import run_scheduled_job
from cobrador.notifications import services as notifications
from cobrador.notifications.models import Notice
from cobrador.webhooks import services as webhooks
from cobrador.webhooks.models import WebhookDelivery


class ActionRefused(Exception):
    """The action does not apply (any more) to its target; nothing was changed."""


@dataclass(frozen=True)
class Action:
    name: str
    label: str  # the button
    question: str  # the confirmation page's question, with {target}
    permission: str
    perform: Callable  # (user, account, target, form) -> message
    needs_reason: bool = False


def _audit(user, obj, message: str) -> None:
    LogEntry.objects.log_actions(user_id=user.pk, queryset=[obj], action_flag=CHANGE,
                                 change_message=message, single_object=True)


def retry_now(user, account: BillingAccount, target: str, form) -> str:
    schedule = (DunningInvoice.objects.select_for_update(of=("self",))
                .filter(account=account, invoice__public_id=target).first())
    if schedule is None:
        raise ActionRefused(f"invoice {target} of this account is not in dunning")
    if not dunning.retry_now(dunning_ids=[schedule.pk]):
        raise ActionRefused(f"the retries of invoice {target} are {schedule.status}: nothing to retry")
    # The payment-retry job runs it at once (a worker takes the task; the gateway calls happen there).
    run_scheduled_job.enqueue("payment-retry")
    _audit(user, schedule, f"Retry now (invoice {target}): due at once, payment-retry started")
    return f"The next retry of invoice {target} is due now; payment-retry was started."


def replay_webhook(user, account: BillingAccount, target: str, form) -> str:
    delivery = (WebhookDelivery.objects.select_for_update(of=("self",)).select_related("endpoint")
                .filter(organization_id=account.organization_id, public_id=target).first())
    if delivery is None:
        raise ActionRefused(f"webhook delivery {target} is not this account's organization's")
    webhooks.replay_delivery(delivery=delivery)
    _audit(user, delivery, f"Replayed webhook delivery {target} (same webhook-id)")
    return f"Webhook delivery {target} will be sent again (same webhook-id)."


def replay_callback(user, account: BillingAccount, target: str, form) -> str:
    callback = (GatewayCallback.objects.select_for_update(of=("self",))
                .filter(organization_id=account.organization_id, public_id=target).first())
    if callback is None:
        raise ActionRefused(f"callback {target} is not this account's organization's")
    if callback.status == "rejected":
        raise ActionRefused(f"callback {target} was rejected (bad signature or unknown gateway): it is never processed")
    receiving.reprocess(callback)
    _audit(user, callback, f"Replayed callback {target}: processed again")
    return f"Callback {target} will be processed again."


def unpark_notice(user, account: BillingAccount, target: str, form) -> str:
    notice = Notice.objects.select_for_update().filter(account=account, public_id=target).first()
    if notice is None:
        raise ActionRefused(f"notice {target} is not one of this account's")
    if not notifications.send_again(notice_ids=[notice.pk]):
        raise ActionRefused(f"notice {target} is {notice.status}: only failed or parked notices are unparked")
    _audit(user, notice, f"Unparked notice {target}: due now")
    return f"Notice {target} will be sent again."


def suspend(user, account: BillingAccount, target: str, form) -> str:
    reason = form.get("reason", "").strip()
    if not reason:
        raise ActionRefused("say why the account is suspended")
    dunning.suspend_account(account=account, reason=reason)
    _audit(user, account, f"Suspended by an operator: {reason}")
    return f"Account {account.public_id} is suspended."


def reactivate(user, account: BillingAccount, target: str, form) -> str:
    dunning.reactivate_account(account=account)
    _audit(user, account, "Reactivated by an operator")
    return f"Account {account.public_id} is active again."


ACTIONS = {action.name: action for action in [
    Action("retry_now", "Retry now", "Run the next dunning retry of invoice {target} now?",
           "dunning.change_dunninginvoice", retry_now),
    Action("replay_webhook", "Replay", "Send webhook delivery {target} again, with the same webhook-id?",
           "webhooks.change_webhookdelivery", replay_webhook),
    Action("replay_callback", "Replay", "Process gateway callback {target} again?",
           "callbacks.change_gatewaycallback", replay_callback),
    Action("unpark_notice", "Unpark", "Send notice {target} again?", "notifications.change_notice", unpark_notice),
    Action("suspend", "Suspend", "Suspend account {target}? It is told (billing_account.suspended).",
           "customers.change_billingaccount", suspend, needs_reason=True),
    Action("reactivate", "Reactivate", "Reactivate account {target}? Billing resumes from the current period; "
           "if invoices are still unpaid past the grace period, the next suspension check suspends it again "
           "unless its delinquency case is written off.", "customers.change_billingaccount", reactivate),
]}


def perform(action: Action, *, user, account: BillingAccount, target: str, form) -> str:
    """Perform `action` in one transaction; ActionRefused (nothing changed) when it does not apply."""
    try:
        with transaction.atomic():
            locked = BillingAccount.objects.select_for_update().get(pk=account.pk)
            return action.perform(user, locked, target, form)
    except ApiError as exc:  # a service's business condition (endpoint disabled, already suspended...)
        raise ActionRefused(exc.message) from exc
