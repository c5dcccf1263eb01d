from datetime import timedelta

from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Query, Router

from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit, Timestamp
from cobrador.customers.models import BillingAccount
from cobrador.dunning import analytics, preview, services
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.dunning.schemas import (
    DelinquencyStatus,
    DelinquentAccountOut,
    DelinquentAccountPage,
    DunningPreviewOut,
    RecoveryAnalyticsOut,
    RecoveryOutcome,
    RecoveryRecordOut,
    RecoveryRecordPage,
)
from cobrador.organizations.schemas import PaymentMethodType

router = Router(tags=["dunning"])
register_path_id("case_id", DelinquentAccount)
register_path_id("record_id", RecoveryRecord)
ANALYTICS_DEFAULT_DAYS = 30



def _cases(request):
    invoices = DunningInvoice.objects.select_related("invoice").order_by("pk")
    return (DelinquentAccount.objects.filter(organization=request.auth).select_related("account")
            .prefetch_related(Prefetch("invoices", queryset=invoices)))


def _case_data(case: DelinquentAccount) -> dict:
    return services.delinquent_account_data(case, invoice_ids=[d.invoice.public_id for d in case.invoices.all()])


@router.get("/delinquent_accounts", response=DelinquentAccountPage, summary="List delinquent accounts")
def list_delinquent_accounts(request, account: str | None = None, status: DelinquencyStatus | None = None,
                             opened_at_gte: Timestamp | None = None, opened_at_lt: Timestamp | None = None,
                             limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `account` (ba_ id), `status`, and `opened_at_gte` <= opened_at <
    `opened_at_lt` (ISO 8601 with a timezone)."""
    cases = _cases(request)
    if account:
        cases = cases.filter(account__public_id=account)
    if status:
        cases = cases.filter(status=status)
    if opened_at_gte:
        cases = cases.filter(opened_at__gte=opened_at_gte)
    if opened_at_lt:
        cases = cases.filter(opened_at__lt=opened_at_lt)
    return paginate(cases, cursor=cursor, limit=limit, serialize=_case_data)


@router.get("/delinquent_accounts/{case_id}", response=DelinquentAccountOut, summary="Retrieve a delinquent account")
def get_delinquent_account(request, case_id: str):
    return _case_data(get_object_or_404(_cases(request), public_id=case_id))


def _records(request):
    return RecoveryRecord.objects.filter(organization=request.auth).select_related("invoice", "account", "payment")


@router.get("/recovery_records", response=RecoveryRecordPage, summary="List recovery records")
def list_recovery_records(request, account: str | None = None, invoice: str | None = None,
                          outcome: RecoveryOutcome | None = None, method: PaymentMethodType | None = None,
                          attempt_number: int | None = None, attempted_at_gte: Timestamp | None = None,
                          attempted_at_lt: Timestamp | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `account` (ba_ id), `invoice` (in_ id), `outcome`, `method`,
    `attempt_number` (0 is the first charge), and `attempted_at_gte` <= attempted_at < `attempted_at_lt`."""
    records = _records(request)
    if account:
        records = records.filter(account__public_id=account)
    if invoice:
        records = records.filter(invoice__public_id=invoice)
    if outcome:
        records = records.filter(outcome=outcome)
    if method:
        records = records.filter(method=method)
    if attempt_number is not None:
        records = records.filter(attempt_number=attempt_number)
    if attempted_at_gte:
        records = records.filter(attempted_at__gte=attempted_at_gte)
    if attempted_at_lt:
        records = records.filter(attempted_at__lt=attempted_at_lt)
    return paginate(records, cursor=cursor, limit=limit, serialize=services.recovery_record_data)


@router.get("/recovery_records/{record_id}", response=RecoveryRecordOut, summary="Retrieve a recovery record")
def get_recovery_record(request, record_id: str):
    return services.recovery_record_data(get_object_or_404(_records(request), public_id=record_id))


@router.get("/billing_accounts/{account_id}/dunning/preview", response=DunningPreviewOut,
            summary="Preview an account's dunning timeline")
def dunning_preview(request, account_id: str):
    account = get_object_or_404(BillingAccount, organization=request.auth, public_id=account_id)
    return preview.account_preview(account=account)


@router.get("/analytics/recovery", response=RecoveryAnalyticsOut, by_alias=True,
            summary="Recovery of failed payments")
def recovery_analytics(request, date_from: Timestamp | None = Query(None, alias="from"),
                       date_to: Timestamp | None = Query(None, alias="to")):
    """`from` and `to` are ISO 8601 date-times with a timezone; default: the last 30 days."""
    end = date_to or clock.now()
    start = date_from or end - timedelta(days=ANALYTICS_DEFAULT_DAYS)
    if start >= end:
        raise ValidationFailed("from must be before to", field="from")
    return analytics.recovery_analytics(organization=request.auth, start=start, end=end)
