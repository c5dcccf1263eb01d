"""A billing account's whole history in one timeline, newest first: its subscriptions, invoices,
payments, dunning (cases, retry schedules and every attempt), notices, the webhook deliveries of the
events about it and the gateway callbacks about its payments.

Each entry says what it is, links to its admin page, and names the operator actions that apply to it
now (ops/actions.py performs them). Reads only; every kind is bounded to its latest LIMIT rows.

Events and callbacks carry no account column: events are matched by the public ids of the account and
its subscriptions, invoices and payments in their `data`; callbacks by the payments their processing
changed or, for those that failed before changing anything, by the provider charge ids in their body.
"""

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Q

from cobrador.callbacks.models import GatewayCallback
from cobrador.core.money import format_money
from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.events.models import Event
from cobrador.events.types import ACCOUNT_KEYS
from cobrador.invoicing.models import Invoice
from cobrador.notifications.models import Notice
from cobrador.ops.overview import change_page
from cobrador.payments.models import Payment
from cobrador.subscriptions.models import Subscription
from cobrador.webhooks.models import WebhookDelivery

LIMIT = 200  # rows per kind
CALLBACKS_SCANNED = 2000  # the organization's latest callbacks looked through for this account's


@dataclass
class Entry:
    at: datetime
    kind: str  # subscription | invoice | payment | dunning | notice | webhook | callback | account
    title: str
    status: str = ""
    detail: str = ""
    url: str = ""
    target: str = ""  # the public id (or key) the actions act on
    actions: list[str] = field(default_factory=list)  # names in ops.actions.ACTIONS


def _account_entries(account: BillingAccount) -> list[Entry]:
    entries = [Entry(account.created_at, "account", "Account created", detail=account.email)]
    if account.status == "suspended" and account.suspended_at:
        entries.append(Entry(account.suspended_at, "account", "Account suspended", "suspended",
                             account.suspension_reason))
    return entries


def _subscription_entries(account: BillingAccount) -> tuple[list[Entry], list[str]]:
    entries, ids = [], []
    for sub in Subscription.objects.filter(account=account).select_related("plan").order_by("-id")[:LIMIT]:
        ids.append(sub.public_id)
        entries.append(Entry(sub.created_at, "subscription", f"Subscription {sub.public_id} to {sub.plan.name}",
                             sub.status, f"period {sub.current_period_start:%Y-%m-%d} to "
                             f"{sub.current_period_end:%Y-%m-%d}", change_page(sub), sub.public_id))
        if sub.canceled_at:
            entries.append(Entry(sub.canceled_at, "subscription", f"Subscription {sub.public_id} canceled",
                                 sub.status, sub.cancellation_reason, change_page(sub), sub.public_id))
    return entries, ids


def _invoice_entries(account: BillingAccount) -> tuple[list[Entry], list[str]]:
    entries, ids = [], []
    for invoice in Invoice.objects.filter(account=account).order_by("-id")[:LIMIT]:
        ids.append(invoice.public_id)
        entries.append(Entry(invoice.created_at, "invoice", f"Invoice #{invoice.number} ({invoice.public_id})",
                             invoice.status, f"{format_money(invoice.total, invoice.currency)}, "
                             f"due {invoice.due_date}, {format_money(invoice.amount_due, invoice.currency)} to pay",
                             change_page(invoice), invoice.public_id))
        if invoice.paid_at:
            entries.append(Entry(invoice.paid_at, "invoice", f"Invoice #{invoice.number} paid", invoice.status,
                                 format_money(invoice.amount_paid, invoice.currency), change_page(invoice),
                                 invoice.public_id))
        if invoice.voided_at:
            entries.append(Entry(invoice.voided_at, "invoice", f"Invoice #{invoice.number} voided", invoice.status,
                                 "", change_page(invoice), invoice.public_id))
    return entries, ids


def _payment_entries(account: BillingAccount) -> tuple[list[Entry], list[Payment]]:
    entries = []
    payments = list(Payment.objects.filter(account=account).select_related("invoice").order_by("-id")[:LIMIT])
    for payment in payments:
        failure = f" ({payment.failure_code}: {payment.failure_message})" if payment.failure_code else ""
        entries.append(Entry(payment.created_at, "payment",
                             f"Payment {payment.public_id} of invoice #{payment.invoice.number}", payment.status,
                             f"{format_money(payment.amount, payment.currency)} by {payment.method} at "
                             f"{payment.provider}, {payment.source}{failure}", change_page(payment),
                             payment.public_id))
    return entries, payments


def _dunning_entries(account: BillingAccount) -> list[Entry]:
    entries = []
    for case in DelinquentAccount.objects.filter(account=account).order_by("-id")[:LIMIT]:
        entries.append(Entry(case.opened_at, "dunning", f"Delinquency {case.public_id} opened", case.status,
                             f"{case.overdue_invoice_count} overdue invoice(s), "
                             f"{format_money(case.overdue_amount, case.currency)}", change_page(case), case.public_id))
        if case.closed_at:
            entries.append(Entry(case.closed_at, "dunning", f"Delinquency {case.public_id} closed", case.status,
                                 "", change_page(case), case.public_id))
    for schedule in (DunningInvoice.objects.filter(account=account).select_related("invoice")
                     .order_by("-id")[:LIMIT]):
        actions = ["retry_now"] if schedule.status in ("scheduled", "failed") else []
        if schedule.status == "failed":
            detail = f"parked after {schedule.error_count} errors: {schedule.last_error.strip()[-200:]}"
        elif schedule.next_attempt_at:
            detail = f"attempt {schedule.next_attempt_number} due {schedule.next_attempt_at:%Y-%m-%d %H:%M} UTC"
        else:
            detail = f"{schedule.attempts_made} retries made"
        entries.append(Entry(schedule.opened_at, "dunning", f"Retries of invoice #{schedule.invoice.number}",
                             schedule.status, detail, change_page(schedule), schedule.invoice.public_id, actions))
    for record in (RecoveryRecord.objects.filter(account=account).select_related("invoice")
                   .order_by("-id")[:LIMIT]):
        decline = f" ({record.decline_code})" if record.decline_code else ""
        entries.append(Entry(record.attempted_at, "dunning",
                             f"Retry {record.attempt_number} of invoice #{record.invoice.number} by {record.method}",
                             record.outcome, f"{record.public_id}{decline}", change_page(record), record.public_id))
    return entries


def _notice_entries(account: BillingAccount) -> list[Entry]:
    entries = []
    for notice in Notice.objects.filter(account=account).order_by("-id")[:LIMIT]:
        parked = notice.status in ("failed", "parked")
        actions = ["unpark_notice"] if parked else []
        detail = notice.last_error if parked else notice.recipient
        entries.append(Entry(notice.created_at, "notice", f"Notice {notice.type} by {notice.channel}", notice.status,
                             detail[:200], change_page(notice), notice.public_id, actions))
    return entries


def _webhook_entries(account: BillingAccount, object_ids: list[str]) -> list[Entry]:
    about_account = Q(data__id__in=object_ids)
    for key in ACCOUNT_KEYS:
        about_account |= Q(**{f"data__{key}": account.public_id})
    events = (Event.objects.filter(organization_id=account.organization_id).filter(about_account)
              .order_by("-created_at")[:LIMIT])
    by_event = {event.pk: event for event in events}
    entries = []
    deliveries = (WebhookDelivery.objects.filter(event_id__in=list(by_event)).select_related("endpoint")
                  .order_by("-id")[:LIMIT])
    for delivery in deliveries:
        event = by_event[delivery.event_id]
        code = f"last answer {delivery.last_status_code}" if delivery.last_status_code else delivery.last_error
        entries.append(Entry(delivery.created_at, "webhook", f"Webhook {event.type} to {delivery.endpoint.url}",
                             delivery.status, f"{delivery.public_id}, {delivery.attempt_count} attempt(s) {code}"
                             .strip()[:200], change_page(delivery), delivery.public_id, ["replay_webhook"]))
    return entries


def _callback_entries(account: BillingAccount, payments: list[Payment]) -> list[Entry]:
    payment_ids = {p.public_id for p in payments}
    charge_ids = {p.provider_charge_id for p in payments if p.provider_charge_id}
    if not payment_ids:
        return []
    entries = []
    scanned = (GatewayCallback.objects.filter(organization_id=account.organization_id).order_by("-id")
               .only("public_id", "provider", "event_type", "status", "error", "changes", "body", "received_at")
               [:CALLBACKS_SCANNED])
    for callback in scanned:
        changed = {c.get("payment") for c in callback.changes if isinstance(c, dict)}
        body = bytes(callback.body)
        if not (changed & payment_ids or any(charge.encode() in body for charge in charge_ids)):
            continue
        actions = [] if callback.status == "rejected" else ["replay_callback"]
        entries.append(Entry(callback.received_at, "callback", f"Callback {callback.event_type or '?'} from "
                             f"{callback.provider}", callback.status, callback.error.strip()[:200]
                             or ", ".join(sorted(p for p in changed if p)), change_page(callback),
                             callback.public_id, actions))
        if len(entries) >= LIMIT:
            break
    return entries


def account_timeline(account: BillingAccount) -> list[Entry]:
    subscriptions, subscription_ids = _subscription_entries(account)
    invoices, invoice_ids = _invoice_entries(account)
    payment_entries, payments = _payment_entries(account)
    object_ids = [account.public_id, *subscription_ids, *invoice_ids, *(p.public_id for p in payments)]
    entries = [*_account_entries(account), *subscriptions, *invoices, *payment_entries, *_dunning_entries(account),
               *_notice_entries(account), *_webhook_entries(account, object_ids),
               *_callback_entries(account, payments)]
    return sorted(entries, key=lambda e: e.at, reverse=True)
