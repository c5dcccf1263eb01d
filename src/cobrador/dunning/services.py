"""Dunning: opening it on a first failed charge, closing it when invoices are paid or voided, marking
invoices overdue, suspending and reactivating accounts. Services never commit: callers do.

The policy (organizations.DunningConfig; semantics documented on its API schema):

* the first failed charge of an open invoice opens dunning: a DunningInvoice with retry 1 scheduled
  `interval_before_retry(1)` days later, a RecoveryRecord for that charge (attempt 0), and the
  account's open DelinquentAccount (billing_account.delinquent when it is new);
* retry k+1 is scheduled when attempt k ends, from the config of that moment (so a config change
  affects only attempts not yet scheduled); see retries.py for how an attempt walks the methods;
* an account is overdue while it has an open invoice with something due that is past its due date
  or in dunning; the moment it has none left (paid, voided) its case closes as recovered and a
  suspended account is reactivated, inside the transaction that paid the last invoice.
"""

from collections import defaultdict
from datetime import date, datetime, timedelta

from django.db.models import Count, Exists, OuterRef, Prefetch, Q, Sum

from cobrador.core import clock
from cobrador.core.bulk import update_rows
from cobrador.core.money import format_money
from cobrador.customers.models import BillingAccount
from cobrador.customers.services import account_data, accounts_with_default_payment_method
from cobrador.dunning.errors import AccountAlreadySuspended, AccountNotSuspended
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.events.services import EventDraft, record_events
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.invoicing.services import invoice_data
from cobrador.organizations.models import DunningConfig
from cobrador.payments.models import Payment
from cobrador.payments.services import payable_document_fields
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import subscription_data

PAYABLE = ("open", "uncollectible")


# --- what the API returns -------------------------------------------------------------------------


def delinquent_account_data(case: DelinquentAccount, invoice_ids: list[str] | None = None) -> dict:
    if invoice_ids is None:
        invoice_ids = list(case.invoices.order_by("pk").values_list("invoice__public_id", flat=True))
    return {
        "id": case.public_id,
        "object": "delinquent_account",
        "account": case.account.public_id,
        "status": case.status,
        "opened_at": case.opened_at,
        "overdue_invoice_count": case.overdue_invoice_count,
        "overdue_amount": case.overdue_amount,
        "currency": case.currency,
        "invoices": invoice_ids,
        "suspended_at": case.suspended_at,
        "closed_at": case.closed_at,
        "updated_at": case.updated_at,
    }


def recovery_record_data(record: RecoveryRecord) -> dict:
    return {
        "id": record.public_id,
        "object": "recovery_record",
        "invoice": record.invoice.public_id,
        "account": record.account.public_id,
        "attempt_number": record.attempt_number,
        "method": record.method,
        "provider": record.provider or None,
        "payment": record.payment.public_id if record.payment_id else None,
        "outcome": record.outcome,
        "decline_code": record.decline_code or None,
        "message": record.message or None,
        "amount": record.amount,
        "currency": record.currency,
        "attempted_at": record.attempted_at,
        "next_retry_at": record.next_retry_at,
        "created_at": record.created_at,
    }


def attempt_outcome(records: list[RecoveryRecord]) -> tuple[str, str]:
    """(outcome, method) of a whole attempt: what its walk ended with."""
    for outcome in ("succeeded", "issued", "error", "processing", "failed"):
        for record in records:
            if record.outcome == outcome:
                return outcome, record.method
    return "skipped", records[-1].method if records else ""


def attempt_data(records: list[RecoveryRecord], next_retry_at: datetime | None) -> dict:
    """The payload of dunning.retry_attempted: one attempt, every method it tried."""
    first = records[0]
    outcome, method = attempt_outcome(records)
    issued = next((r for r in records if r.outcome == "issued" and r.payment_id), None)
    return {
        "object": "dunning_attempt",
        "invoice": first.invoice.public_id,
        "account": first.account.public_id,
        "attempt_number": first.attempt_number,
        "method": method,
        "outcome": outcome,
        "next_retry_at": next_retry_at,
        "document": document_data(issued.payment) if issued is not None else None,
        "records": [recovery_record_data(r) for r in records],
    }


def document_data(payment: Payment) -> dict:
    """The boleto or PIX an attempt issued, as the customer pays it."""
    return {
        "payment": payment.public_id,
        "method": payment.method,
        "amount": payment.amount,
        "currency": payment.currency,
        **payable_document_fields(payment),
    }


def exhausted_data(dunning: DunningInvoice) -> dict:
    return {
        "object": "dunning_exhausted",
        "invoice": dunning.invoice.public_id,
        "account": dunning.account.public_id,
        "attempts_made": dunning.attempts_made,
        "opened_at": dunning.opened_at,
        "last_attempt_at": dunning.last_attempt_at,
    }


# --- the policy ----------------------------------------------------------------------------------


def retry_due_at(config: DunningConfig, *, after_attempt: int, anchor: datetime) -> datetime | None:
    """When retry `after_attempt + 1` is due if attempt `after_attempt` ended at `anchor`; None when
    the retries are used up."""
    k = after_attempt + 1
    if k > config.max_retries or not config.retry_interval_days:
        return None
    return anchor + timedelta(days=config.interval_before_retry(k))


def configs_for(organization_ids) -> dict[int, DunningConfig]:
    return {c.organization_id: c for c in DunningConfig.objects.filter(organization_id__in=set(organization_ids))}


def overdue_invoices(today: date):
    """Invoices that make an account overdue: open, something due, and past their due date or in dunning."""
    return Invoice.objects.filter(status__in=PAYABLE, amount_due__gt=0).filter(
        Q(due_date__lt=today) | Q(dunning__isnull=False))


# --- opening dunning -----------------------------------------------------------------------------


def open_dunning(*, invoice_ids: list[int]) -> list[DunningInvoice]:
    """The first failed charge of each of these open invoices opens its dunning (in the caller's
    transaction). Invoices already in dunning, or no longer open, are left alone."""
    now = clock.now()
    invoices = list(Invoice.objects.select_for_update(of=("self",)).filter(
        pk__in=invoice_ids, status="open", amount_due__gt=0, dunning__isnull=True)
        .select_related("organization", "account", "subscription").order_by("pk"))
    if not invoices:
        return []
    configs = configs_for(i.organization_id for i in invoices)
    cases = open_cases(account_ids=[i.account_id for i in invoices], now=now)
    failed = {}
    for payment in (Payment.objects.filter(invoice_id__in=[i.pk for i in invoices], status="failed")
                    .select_related("payment_method").order_by("failed_at", "pk")):
        failed[payment.invoice_id] = payment  # the latest failure wins

    rows, records, events = [], [], []
    for invoice in invoices:
        config = configs[invoice.organization_id]
        next_at = retry_due_at(config, after_attempt=0, anchor=now)
        payment = failed.get(invoice.pk)
        hard = [payment.payment_method_id] if (payment is not None and payment.decline_class == "hard"
                                               and payment.payment_method_id) else []
        dunning = DunningInvoice(
            organization_id=invoice.organization_id, account=invoice.account, invoice=invoice,
            delinquent_account=cases[invoice.account_id], status="scheduled" if next_at else "exhausted",
            opened_at=now, attempts_made=0, next_attempt_number=1, next_attempt_at=next_at,
            next_methods=list(config.retry_payment_methods) if next_at else [], hard_declined_cards=hard,
            created_at=now, updated_at=now)
        rows.append(dunning)
        if payment is not None:
            records.append(RecoveryRecord(
                organization_id=invoice.organization_id, account=invoice.account, invoice=invoice, attempt_number=0,
                method=payment.method, provider=payment.provider, payment=payment, outcome="failed",
                decline_code=payment.failure_code, message=payment.failure_message[:500], amount=payment.amount,
                currency=payment.currency, attempted_at=payment.failed_at or now, next_retry_at=next_at,
                created_at=now))
        if not next_at:
            events.append(EventDraft(invoice.organization, "dunning.exhausted", exhausted_data(dunning)))
    DunningInvoice.objects.bulk_create(rows)
    RecoveryRecord.objects.bulk_create(records, ignore_conflicts=True)
    record_events(events)
    mark_overdue(dunning_ids=[d.pk for d in rows], today=now.date())
    refresh_cases({c.pk for c in cases.values()}, today=now.date())
    return rows


def open_cases(*, account_ids, now: datetime) -> dict[int, DelinquentAccount]:
    """The open DelinquentAccount of each account, opened now where there is none
    (billing_account.delinquent). Locks the accounts, so two transactions cannot both open one."""
    accounts = {a.pk: a for a in BillingAccount.objects.select_for_update().select_related("organization")
                .filter(pk__in=set(account_ids)).order_by("pk")}
    cases = {c.account_id: c for c in DelinquentAccount.objects.filter(
        account_id__in=accounts, status__in=DelinquentAccount.OPEN_STATUSES)}
    new = [DelinquentAccount(organization_id=a.organization_id, account=a, status="open", opened_at=now,
                             currency=a.organization.default_currency, updated_at=now)
           for pk, a in accounts.items() if pk not in cases]
    if new:
        DelinquentAccount.objects.bulk_create(new)
        if any(c.pk is None for c in new):  # backends without RETURNING on bulk insert
            ids = dict(DelinquentAccount.objects.filter(public_id__in=[c.public_id for c in new])
                       .values_list("public_id", "pk"))
            for case in new:
                case.pk = ids[case.public_id]
        record_events([EventDraft(case.account.organization, "billing_account.delinquent",
                                  {**account_data(case.account), "delinquent_account":
                                   delinquent_account_data(case, invoice_ids=[])}) for case in new])
        cases.update({c.account_id: c for c in new})
    return cases


def refresh_cases(case_ids, *, today: date) -> None:
    """Recount the overdue invoices and amount of these open cases."""
    cases = list(DelinquentAccount.objects.filter(pk__in=list(case_ids), status__in=DelinquentAccount.OPEN_STATUSES))
    if not cases:
        return
    totals = {row["account_id"]: row for row in overdue_invoices(today).filter(
        account_id__in=[c.account_id for c in cases]).values("account_id").annotate(n=Count("pk"),
                                                                                   amount=Sum("amount_due"))}
    now = clock.now()
    changed = []
    for case in cases:
        row = totals.get(case.account_id, {"n": 0, "amount": 0})
        if (case.overdue_invoice_count, case.overdue_amount) != (row["n"], row["amount"] or 0):
            case.overdue_invoice_count, case.overdue_amount, case.updated_at = row["n"], row["amount"] or 0, now
            changed.append(case)
    update_rows(changed, ["overdue_invoice_count", "overdue_amount", "updated_at"])


# --- overdue ------------------------------------------------------------------------------------


def invoices_to_mark_overdue(today: date):
    return DunningInvoice.objects.filter(overdue_at__isnull=True, status__in=DunningInvoice.ACTIVE,
                                         invoice__status="open", invoice__due_date__lt=today)


def mark_overdue(*, dunning_ids, today: date) -> int:
    """Invoices in dunning past their due date: invoice.overdue once, and their subscriptions past_due."""
    now = clock.now()
    rows = list(invoices_to_mark_overdue(today).filter(pk__in=list(dunning_ids)).select_for_update(of=("self",))
                .select_related("organization", "invoice__account", "invoice__subscription", "invoice__coupon")
                .prefetch_related(Prefetch("invoice__lines", queryset=InvoiceLine.objects.select_related("plan")
                                           .order_by("pk"))))
    if not rows:
        return 0
    for row in rows:
        row.overdue_at, row.updated_at = now, now
    update_rows(rows, ["overdue_at", "updated_at"])
    events = [EventDraft(row.organization, "invoice.overdue", invoice_data(row.invoice)) for row in rows]
    subscription_ids = {row.invoice.subscription_id for row in rows if row.invoice.subscription_id}
    subscriptions = list(Subscription.objects.select_for_update(of=("self",)).filter(
        pk__in=subscription_ids, status="active").select_related(
        "organization", "account", "plan", "coupon", "payment_method", "pending_plan"))
    for subscription in subscriptions:
        subscription.status, subscription.updated_at = "past_due", now
        events.append(EventDraft(subscription.organization, "subscription.updated", subscription_data(subscription)))
    update_rows(subscriptions, ["status", "updated_at"])
    record_events(events)
    return len(rows)


# --- closing dunning, reactivation ----------------------------------------------------------------


def settle_invoices(*, invoice_ids) -> None:
    """These invoices were paid or voided: their dunning closes (recovered / canceled), and each of their
    accounts left without an overdue invoice is recovered, and reactivated if suspended."""
    invoice_ids = list(invoice_ids)
    now = clock.now()
    rows = list(DunningInvoice.objects.select_for_update(of=("self",)).filter(
        invoice_id__in=invoice_ids, status__in=DunningInvoice.ACTIVE).select_related("invoice"))
    for row in rows:
        row.status = "recovered" if row.invoice.status == "paid" else "canceled"
        row.closed_at, row.next_attempt_at, row.lease_until, row.lease_token, row.updated_at = now, None, None, "", now
    update_rows(rows, ["status", "closed_at", "next_attempt_at", "lease_until", "lease_token",
                                              "updated_at"])
    settled = list(Invoice.objects.filter(pk__in=invoice_ids).values_list("account_id", "subscription_id"))
    settle_accounts(account_ids={account_id for account_id, _ in settled})
    restore_subscriptions(subscription_ids={s for _, s in settled if s is not None})


def settle_accounts(*, account_ids) -> None:
    """Accounts with an open case, or suspended, and no overdue invoice left: the case closes as
    recovered, a suspended account becomes active, past_due subscriptions active again, and
    billing_account.reactivated is emitted. The others get their case's totals recounted."""
    now = clock.now()
    today = now.date()
    cases = {c.account_id: c for c in DelinquentAccount.objects.select_for_update(of=("self",)).filter(
        account_id__in=list(account_ids), status__in=DelinquentAccount.OPEN_STATUSES)}
    suspended = set(BillingAccount.objects.filter(pk__in=list(account_ids), status="suspended")
                    .values_list("pk", flat=True))
    candidates = set(cases) | suspended
    if not candidates:
        return
    still_overdue = set(overdue_invoices(today).filter(account_id__in=candidates).values_list("account_id",
                                                                                               flat=True))
    refresh_cases([c.pk for a, c in cases.items() if a in still_overdue], today=today)
    recovered = candidates - still_overdue
    if recovered:
        reactivate(account_ids=recovered, cases=cases, now=now)


def reactivate(*, account_ids, cases: dict[int, DelinquentAccount], now: datetime) -> None:
    accounts = list(BillingAccount.objects.select_for_update().select_related("organization")
                    .filter(pk__in=list(account_ids)).order_by("pk"))
    events = []
    closed = []
    for account in accounts:
        if account.status == "suspended":
            _lift_suspension(account, now)
        case = cases.get(account.pk)
        if case is not None:
            case.status, case.closed_at, case.updated_at = "recovered", now, now
            case.overdue_invoice_count, case.overdue_amount = 0, 0
            closed.append(case)
        data = account_data(account)
        if case is not None:
            data["delinquent_account"] = delinquent_account_data(case)
        events.append(EventDraft(account.organization, "billing_account.reactivated", data))
    update_rows(closed, ["status", "closed_at", "updated_at", "overdue_invoice_count",
                                                   "overdue_amount"])
    record_events(events)
    restore_subscriptions(subscription_ids=Subscription.objects.filter(
        account_id__in=list(account_ids), status="past_due").values_list("pk", flat=True))


def _lift_suspension(account: BillingAccount, now: datetime) -> None:
    """A suspended (locked) account becomes active. Billing resumes from the current period: periods that
    began while it was suspended are not billed."""
    was_suspended_at = account.suspended_at
    account.status, account.suspended_at, account.suspension_reason, account.updated_at = "active", None, "", now
    account.save(update_fields=["status", "suspended_at", "suspension_reason", "updated_at"])
    if was_suspended_at is not None:
        Subscription.objects.filter(account=account, uninvoiced_since__gte=was_suspended_at).update(
            uninvoiced_since=None)


def restore_subscriptions(*, subscription_ids) -> None:
    """past_due subscriptions left without an overdue invoice become active again (subscription.updated)."""
    now = clock.now()
    overdue = overdue_invoices(now.date()).filter(subscription_id=OuterRef("pk"))
    subscriptions = list(Subscription.objects.select_for_update(of=("self",)).filter(
        pk__in=list(subscription_ids), status="past_due").exclude(Exists(overdue)).select_related(
        "organization", "account", "plan", "coupon", "payment_method", "pending_plan"))
    for subscription in subscriptions:
        subscription.status, subscription.updated_at = "active", now
    update_rows(subscriptions, ["status", "updated_at"])
    record_events([EventDraft(s.organization, "subscription.updated", subscription_data(s)) for s in subscriptions])


# --- canceling retries ---------------------------------------------------------------------------


def cancel_retries(*, subscription_ids) -> int:
    """A canceled subscription: the pending retries of its invoices are canceled (the invoices stay
    open and overdue). Returns how many schedules were canceled."""
    now = clock.now()
    return DunningInvoice.objects.filter(invoice__subscription_id__in=list(subscription_ids),
                                         status__in=("scheduled", "running", "failed")).update(
        status="canceled", next_attempt_at=None, lease_until=None, lease_token="", closed_at=now, updated_at=now)


# --- suspension ---------------------------------------------------------------------------------


def suspendable_cases(as_of: datetime):
    """Open cases whose organization suspends, whose grace period has passed since they opened, and
    that still have an unpaid invoice whose retries are exhausted (or any unpaid invoice in dunning
    when automatic retries are switched off).

    The grace period runs from `opened_at`, when the account became delinquent: an invoice that joins
    the case later (next month's, with fresh retries) neither resets nor postpones it."""
    graces = set(DunningConfig.objects.filter(suspend_after_retries=True).values_list("grace_period_days", flat=True))
    if not graces:
        return DelinquentAccount.objects.none()
    past_grace = Q()
    for days in graces:
        past_grace |= Q(organization__dunning_config__grace_period_days=days,
                        opened_at__lte=as_of - timedelta(days=days))
    unpaid = DunningInvoice.objects.filter(invoice__status__in=PAYABLE)
    exhausted = unpaid.exclude(status__in=DunningInvoice.PENDING).values("delinquent_account_id")
    return (DelinquentAccount.objects.filter(status="open", organization__dunning_config__suspend_after_retries=True)
            .filter(past_grace)
            .filter(Q(organization__dunning_config__auto_retry_enabled=False,
                      pk__in=unpaid.values("delinquent_account_id")) | Q(pk__in=exhausted)))


def suspend(*, case_ids, as_of: datetime) -> dict[str, int]:
    """Suspend the accounts of these cases if they are still due (re-checked under lock)."""
    now = clock.now()
    today = now.date()
    cases = list(suspendable_cases(as_of).filter(pk__in=list(case_ids)).select_for_update(of=("self",))
                 .order_by("pk"))
    if not cases:
        return {}
    accounts = {a.pk: a for a in accounts_with_default_payment_method(
        BillingAccount.objects.select_for_update().select_related("organization")
        .filter(pk__in=[c.account_id for c in cases]).order_by("pk"))}
    # The suspended event names each case's invoices: read for every case at once.
    invoice_ids = defaultdict(list)
    for case_id, invoice_id in DunningInvoice.objects.filter(delinquent_account_id__in=[c.pk for c in cases]).order_by(
            "pk").values_list("delinquent_account_id", "invoice__public_id"):
        invoice_ids[case_id].append(invoice_id)
    overdue = defaultdict(list)
    for invoice in overdue_invoices(today).filter(account_id__in=list(accounts)).order_by("number"):
        overdue[invoice.account_id].append(invoice)
    events, recovered, suspended = [], [], 0
    suspended_accounts, suspended_cases = [], []
    for case in cases:
        account = accounts[case.account_id]
        invoices = overdue.get(account.pk)
        if not invoices:
            recovered.append(account.pk)
            continue
        listed = ", ".join(f"#{i.number} ({i.public_id}, {format_money(i.amount_due, i.currency)} due)"
                           for i in invoices)
        account.status, account.suspended_at, account.updated_at = "suspended", now, now
        account.suspension_reason = f"Unpaid after dunning: invoices {listed}"[:500]
        case.status, case.suspended_at, case.updated_at = "suspended", now, now
        case.overdue_invoice_count = len(invoices)
        case.overdue_amount = sum(i.amount_due for i in invoices)
        suspended_accounts.append(account)
        suspended_cases.append(case)
        case.account = account
        events.append(EventDraft(account.organization, "billing_account.suspended", {
            **account_data(account), "delinquent_account": delinquent_account_data(case, invoice_ids[case.pk]),
            "overdue_invoices": [{"id": i.public_id, "number": i.number, "amount_due": i.amount_due,
                                  "currency": i.currency, "due_date": i.due_date} for i in invoices]}))
        suspended += 1
    update_rows(suspended_accounts, ["status", "suspended_at", "suspension_reason", "updated_at"])
    update_rows(suspended_cases, ["status", "suspended_at", "updated_at", "overdue_invoice_count", "overdue_amount"])
    record_events(events)
    if recovered:
        settle_accounts(account_ids=recovered)
    return {"suspended": suspended, "recovered": len(recovered)}


# --- operators ----------------------------------------------------------------------------------


def write_off(*, case: DelinquentAccount) -> DelinquentAccount:
    """An operator gives the debt up: the case closes as written_off and its pending retries are canceled.
    A suspended account stays suspended until its invoices are paid or voided."""
    now = clock.now()
    case = DelinquentAccount.objects.select_for_update().get(pk=case.pk)
    if case.status not in DelinquentAccount.OPEN_STATUSES:
        return case
    case.status, case.closed_at, case.updated_at = "written_off", now, now
    case.save(update_fields=["status", "closed_at", "updated_at"])
    DunningInvoice.objects.filter(delinquent_account=case, status__in=("scheduled", "running", "failed")).update(
        status="canceled", next_attempt_at=None, lease_until=None, lease_token="", closed_at=now, updated_at=now)
    return case


def retry_now(*, dunning_ids) -> int:
    """An operator asks for these invoices' next retry now: scheduled or parked (`failed`) schedules
    become due at once, their error count cleared. The payment-retry sweep runs them (the caller
    triggers it). Returns how many schedules were made due."""
    now = clock.now()
    return DunningInvoice.objects.filter(pk__in=list(dunning_ids), status__in=("scheduled", "failed")).update(
        status="scheduled", next_attempt_at=now, error_count=0, last_error="", lease_until=None, lease_token="",
        updated_at=now)


def suspend_account(*, account: BillingAccount, reason: str) -> BillingAccount:
    """An operator suspends an account (billing_account.suspended); its open delinquency case, if any,
    is marked suspended too."""
    now = clock.now()
    account = accounts_with_default_payment_method(
        BillingAccount.objects.select_for_update().select_related("organization").filter(pk=account.pk)).get()
    if account.status == "suspended":
        raise AccountAlreadySuspended(f"account {account.public_id} is already suspended", field="account")
    account.status, account.suspended_at, account.updated_at = "suspended", now, now
    account.suspension_reason = f"Suspended by an operator: {reason}"[:500]
    account.save(update_fields=["status", "suspended_at", "suspension_reason", "updated_at"])
    data = account_data(account)
    case = DelinquentAccount.objects.select_for_update().filter(account=account, status="open").first()
    if case is not None:
        case.status, case.suspended_at, case.updated_at = "suspended", now, now
        case.save(update_fields=["status", "suspended_at", "updated_at"])
        data["delinquent_account"] = delinquent_account_data(case)
    record_events([EventDraft(account.organization, "billing_account.suspended", data)])
    return account


def reactivate_account(*, account: BillingAccount) -> BillingAccount:
    """An operator reactivates a suspended account (billing_account.reactivated). Billing resumes from
    the current period, as after an automatic reactivation. A delinquency case with invoices still unpaid
    stays open: the next suspension-check suspends the account again once its grace has passed, unless
    the case is written off."""
    now = clock.now()
    account = accounts_with_default_payment_method(
        BillingAccount.objects.select_for_update().select_related("organization").filter(pk=account.pk)).get()
    if account.status != "suspended":
        raise AccountNotSuspended(f"account {account.public_id} is not suspended", field="account")
    _lift_suspension(account, now)
    data = account_data(account)
    case = DelinquentAccount.objects.select_for_update().filter(account=account, status="suspended").first()
    if case is not None:
        case.status, case.suspended_at, case.updated_at = "open", None, now
        case.save(update_fields=["status", "suspended_at", "updated_at"])
        data["delinquent_account"] = delinquent_account_data(case)
    record_events([EventDraft(account.organization, "billing_account.reactivated", data)])
    restore_subscriptions(subscription_ids=Subscription.objects.filter(
        account=account, status="past_due").values_list("pk", flat=True))
    return account
