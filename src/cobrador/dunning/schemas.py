from datetime import datetime
from typing import Literal

from ninja import Schema
from pydantic import ConfigDict, Field

from cobrador.organizations.schemas import DunningConfigOut, PaymentMethodType

DelinquencyStatus = Literal["open", "suspended", "recovered", "written_off"]
RecoveryOutcome = Literal["processing", "succeeded", "failed", "issued", "skipped", "error"]

DELINQUENT_ACCOUNT_DESCRIPTION = (
    "An account's delinquency case. It opens (billing_account.delinquent) with the first failed charge of "
    "one of its open invoices, and lists every invoice that entered dunning while it was open. `open`: "
    "retries may be running; `suspended`: the suspension-check job suspended the account (retries "
    "exhausted and grace_period_days passed since `opened_at`); `recovered`: the account was left with no "
    "overdue invoice (an open invoice with something due that is past its due date or in dunning) and was "
    "reactivated at once (billing_account.reactivated); `written_off`: an operator gave the debt up. At "
    "most one open or suspended case per account. `overdue_invoice_count` and `overdue_amount` are "
    "recounted whenever one of its invoices changes."
)

RECOVERY_RECORD_DESCRIPTION = (
    "The audit trail of dunning: one record per payment method tried in one attempt to collect an "
    "invoice, unique per (invoice, attempt_number, method). Attempt 0 is the first charge, whose failure "
    "opened dunning; attempts 1..max_retries are the retries. An attempt walks the methods fixed when it "
    "was scheduled, in order: a card charged and declined is `failed` (`decline_code` says why) and the "
    "walk goes on; a boleto or PIX issued is `issued` and ends the attempt (its payment arrives by "
    "callback); a card charged successfully is `succeeded`; a method the account cannot use is `skipped` "
    "(`no_card`, `card_hard_declined`: a card hard-declined once is never charged again for that invoice, "
    "`no_document`: a boleto needs a CPF/CNPJ) and the walk goes on; `error`: no gateway serves the method "
    "(`no_gateway`), or the provider's answer was lost (the payment is reconciled later); `processing` "
    "only while the gateway call is in flight. `next_retry_at` is when the next attempt is due (null: "
    "none, retries exhausted or the invoice was paid)."
)

PREVIEW_DESCRIPTION = (
    "The account's dunning timeline under the current config. `invoices`: each invoice in dunning with its "
    "attempts: `made` (from the recovery records, with their outcome), `scheduled` (due date and methods "
    "fixed when it was scheduled; `paused` while auto_retry_enabled is false), then `planned`: what the "
    "current config would still do, assuming every attempt fails. `at` is when the payment-retry job makes "
    "an attempt (its first run at or after `due_at`); the next one is due counting from there. "
    "`if_a_charge_failed_now`: for an "
    "account not in dunning, the timeline a charge failing now would start. `unusable_methods`: methods "
    "an attempt would skip for this account, and why. `suspension_at`: when the suspension-check job "
    "would suspend the account (its first run at or after both the end of the grace period and the last "
    "retry), the actual suspension time for a suspended account, null when suspend_after_retries is false."
)

ANALYTICS_DESCRIPTION = (
    "Recovery of failed payments, computed from the recovery records. The cohort is the invoices whose "
    "first charge failed (attempt 0) in [from, to): `failed_payments` and `failed_amount`; "
    "`recovered_count` / `recovered_amount`: those paid since, by any means; `recovery_rate` = "
    "recovered_count / failed_payments. `by_attempt`: per retry number, the cohort invoices attempted and "
    "those whose paying payment was made by that attempt; `by_method`: per method, the records that "
    "actually tried it (not skipped) and the recoveries it made; `recovered_outside_retries`: paid by "
    "other means (POST /v1/invoices/{id}/pay, the first charge's boleto/PIX). "
    "`median_time_to_recover_seconds`: from the first failure to the invoice's payment. Amounts are in "
    "the organization's default currency (invoices in other currencies are counted, not summed). Rates "
    "are null when nothing was attempted."
)


class DelinquentAccountOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": DELINQUENT_ACCOUNT_DESCRIPTION})

    id: str
    object: str = "delinquent_account"
    account: str
    status: DelinquencyStatus
    opened_at: datetime
    overdue_invoice_count: int
    overdue_amount: int
    currency: str
    invoices: list[str] = Field(description="Every invoice (in_ id) that entered dunning in this case.")
    suspended_at: datetime | None
    closed_at: datetime | None
    updated_at: datetime


class DelinquentAccountPage(Schema):
    data: list[DelinquentAccountOut]
    has_more: bool
    next_cursor: str | None = None


class RecoveryRecordOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": RECOVERY_RECORD_DESCRIPTION})

    id: str
    object: str = "recovery_record"
    invoice: str
    account: str
    attempt_number: int
    method: PaymentMethodType
    provider: str | None
    payment: str | None
    outcome: RecoveryOutcome
    decline_code: str | None
    message: str | None
    amount: int = Field(description="The amount due when the attempt was made, in minor units.")
    currency: str
    attempted_at: datetime
    next_retry_at: datetime | None
    created_at: datetime


class RecoveryRecordPage(Schema):
    data: list[RecoveryRecordOut]
    has_more: bool
    next_cursor: str | None = None


class PreviewAttempt(Schema):
    attempt_number: int
    due_at: datetime | None = Field(description="When the attempt is (was) due; null for attempts made.")
    at: datetime = Field(description="When it was made, or when the payment-retry job will make it: its first "
                                     "run at or after due_at.")
    methods: list[PaymentMethodType]
    state: Literal["made", "scheduled", "paused", "planned"]
    outcome: RecoveryOutcome | None


class PreviewInvoice(Schema):
    invoice: str
    amount_due: int
    currency: str
    status: Literal["scheduled", "running", "exhausted", "failed"]
    opened_at: datetime
    attempts: list[PreviewAttempt]


class DunningPreviewOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": PREVIEW_DESCRIPTION})

    object: str = "dunning_preview"
    account: str
    account_status: Literal["active", "suspended"]
    delinquent_account: str | None
    delinquent_since: datetime | None
    config: DunningConfigOut
    unusable_methods: dict[str, str]
    invoices: list[PreviewInvoice]
    if_a_charge_failed_now: list[PreviewAttempt]
    suspension_at: datetime | None


class AttemptRecovery(Schema):
    attempt_number: int
    attempts: int
    recovered: int
    recovery_rate: float | None


class MethodRecovery(Schema):
    method: PaymentMethodType
    attempts: int
    recovered: int
    recovery_rate: float | None


class RecoveryAnalyticsOut(Schema):
    model_config = ConfigDict(json_schema_extra={"description": ANALYTICS_DESCRIPTION}, populate_by_name=True)

    object: str = "recovery_analytics"
    from_: datetime = Field(alias="from")
    to: datetime
    currency: str
    failed_payments: int
    failed_amount: int
    recovered_count: int
    recovered_amount: int
    recovery_rate: float | None
    recovered_outside_retries: int
    by_attempt: list[AttemptRecovery]
    by_method: list[MethodRecovery]
    median_time_to_recover_seconds: int | None
