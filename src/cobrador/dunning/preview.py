"""GET /v1/billing_accounts/{id}/dunning/preview: the account's dunning timeline under the current config.

For each invoice in dunning: the attempts made (from the RecoveryRecords), the attempt already
scheduled (its due date and methods were fixed when it was scheduled), then the attempts the current
config would still make, each assumed to fail when made. An attempt is made by the first payment-retry
run at or after it is due (`at`), and the next one is due counting from there. An account not in dunning gets the
timeline a charge failing now would start. The suspension date is the first suspension-check run at
or after both the end of the grace period (from when the account became delinquent) and the moment one
of its unpaid invoices has its retries exhausted (the earliest such invoice's last planned retry): an
invoice joining the case later does not postpone it.
"""

from collections import defaultdict
from datetime import datetime, timedelta

from cobrador.core import clock
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.dunning import services
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.jobs.catalog import JOBS
from cobrador.organizations.models import DunningConfig
from cobrador.organizations.services import dunning_config_data


def next_run_of(job_name: str, at_or_after: datetime) -> datetime | None:
    """The first tick of a scheduled job at or after `at_or_after` (UTC), None if the job is off."""
    from django_ox.cron import CronExpression

    cron = JOBS[job_name].effective_cron
    if not cron:
        return None
    tick = CronExpression(cron).following((at_or_after - timedelta(microseconds=1)).replace(tzinfo=None))
    return tick.replace(tzinfo=at_or_after.tzinfo)


def unusable_methods(account: BillingAccount) -> dict[str, str]:
    """Methods the account cannot pay with now, and why (an attempt records them as skipped)."""
    reasons = {}
    if not PaymentMethod.objects.filter(account=account, type="card", status="active").exists():
        reasons["card"] = "no_card"
    if not account.document:
        reasons["bank_slip"] = "no_document"
    return reasons


def expected_run(due_at: datetime) -> datetime:
    """When the payment-retry job will make an attempt due at `due_at`: its first run at or after it."""
    return next_run_of("payment-retry", due_at) or due_at


def _planned(config: DunningConfig, *, after_attempt: int, anchor: datetime) -> list[dict]:
    """The attempts after `after_attempt` (made at `anchor`), each assumed to fail when the job runs it."""
    planned, k, at = [], after_attempt, anchor
    while (due := services.retry_due_at(config, after_attempt=k, anchor=at)) is not None:
        k, at = k + 1, expected_run(due)
        planned.append({"attempt_number": k, "due_at": due, "at": at, "methods": list(config.retry_payment_methods),
                        "state": "planned", "outcome": None})
    return planned


def account_preview(*, account: BillingAccount) -> dict:
    now = clock.now()
    config = DunningConfig.objects.get(organization_id=account.organization_id)
    case = DelinquentAccount.objects.filter(account=account, status__in=DelinquentAccount.OPEN_STATUSES).first()
    rows = list(DunningInvoice.objects.filter(account=account, status__in=DunningInvoice.ACTIVE)
                .select_related("invoice").order_by("opened_at", "pk"))
    made = defaultdict(lambda: defaultdict(list))
    for record in RecoveryRecord.objects.filter(invoice_id__in=[r.invoice_id for r in rows]).order_by("pk"):
        made[record.invoice_id][record.attempt_number].append(record)

    # When the first invoice's retries are exhausted: None while none is planned to end (or one already has).
    invoices, last_retry_at, exhausted_at, one_exhausted = [], None, None, False
    for row in rows:
        attempts = [{"attempt_number": k, "due_at": None, "at": min(r.attempted_at for r in records),
                     "methods": [r.method for r in records], "state": "made",
                     "outcome": services.attempt_outcome(records)[0]}
                    for k, records in sorted(made[row.invoice_id].items())]
        if row.status in DunningInvoice.PENDING and row.next_attempt_at is not None:
            state = "scheduled" if config.auto_retry_enabled else "paused"
            at = expected_run(max(row.next_attempt_at, now))
            attempts.append({"attempt_number": row.next_attempt_number, "due_at": row.next_attempt_at, "at": at,
                             "methods": list(row.next_methods), "state": state, "outcome": None})
            if config.auto_retry_enabled:
                attempts += _planned(config, after_attempt=row.next_attempt_number, anchor=at)
        row_last = None
        if config.auto_retry_enabled and row.status in DunningInvoice.PENDING:
            for attempt in attempts:
                if attempt["attempt_number"] > 0 and (row_last is None or attempt["at"] > row_last):
                    row_last = attempt["at"]
        if row_last is None:
            one_exhausted = True  # exhausted already, or retries are off: counts from the grace period's end
        elif exhausted_at is None or row_last < exhausted_at:
            exhausted_at = row_last
        invoices.append({"invoice": row.invoice.public_id, "amount_due": row.invoice.amount_due,
                         "currency": row.invoice.currency, "status": row.status, "opened_at": row.opened_at,
                         "attempts": attempts})

    if_failed_now = []
    if not rows:
        if_failed_now = [{"attempt_number": 0, "due_at": None, "at": now, "methods": [], "state": "planned",
                          "outcome": "failed"}]
        if config.auto_retry_enabled:
            if_failed_now += _planned(config, after_attempt=0, anchor=now)
            last_retry_at = if_failed_now[-1]["at"] if len(if_failed_now) > 1 else None
    elif not one_exhausted:
        last_retry_at = exhausted_at

    suspension_at = None
    if account.status == "suspended":
        suspension_at = account.suspended_at
    elif config.suspend_after_retries:
        since = case.opened_at if case is not None else now
        eligible = since + timedelta(days=config.grace_period_days)
        if last_retry_at is not None and last_retry_at > eligible:
            eligible = last_retry_at
        suspension_at = next_run_of("suspension-check", eligible)
    return {
        "object": "dunning_preview",
        "account": account.public_id,
        "account_status": account.status,
        "delinquent_account": case.public_id if case is not None else None,
        "delinquent_since": case.opened_at if case is not None else None,
        "config": dunning_config_data(config),
        "unusable_methods": unusable_methods(account),
        "invoices": invoices,
        "if_a_charge_failed_now": if_failed_now,
        "suspension_at": suspension_at,
    }
