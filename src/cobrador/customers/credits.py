"""The per-account credit ledger: grants (optionally expiring) and their consumption by invoices.

The balance is the sum of what remains of unexpired grants, so it can never go negative: an
invoice consumes at most that, soonest-expiring grants first.
"""

from datetime import datetime

from django.db.models import F, Q, Sum

from cobrador.core import clock
from cobrador.customers.models import BillingAccount, CreditGrant, CreditUsage


def _usable(account_id: int, currency: str, as_of: datetime):
    return CreditGrant.objects.filter(account_id=account_id, currency=currency, remaining__gt=0).filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=as_of))


def grant_credit(*, account: BillingAccount, amount: int, currency: str = "BRL", reason: str = "",
                 expires_at: datetime | None = None) -> CreditGrant:
    if amount <= 0:
        raise ValueError("a credit grant must be positive")
    return CreditGrant.objects.create(organization_id=account.organization_id, account=account, amount=amount,
                                      remaining=amount, currency=currency, reason=reason, expires_at=expires_at,
                                      created_at=clock.now())


def credit_balance(*, account: BillingAccount, currency: str = "BRL", as_of: datetime | None = None) -> int:
    return _usable(account.pk, currency, as_of or clock.now()).aggregate(s=Sum("remaining"))["s"] or 0


def consume_credit(*, account_id: int, currency: str, up_to: int, invoice, as_of: datetime) -> int:
    """Apply up to `up_to` of the account's credit to `invoice`; returns what was applied.
    Call inside the invoice's transaction: the grants are locked while they are consumed."""
    if up_to <= 0:
        return 0
    grants = _usable(account_id, currency, as_of).select_for_update().order_by(
        F("expires_at").asc(nulls_last=True), "created_at", "pk")
    applied, usages = 0, []
    for grant in grants:
        if applied >= up_to:
            break
        take = min(grant.remaining, up_to - applied)
        grant.remaining -= take
        grant.save(update_fields=["remaining"])
        usages.append(CreditUsage(grant=grant, invoice=invoice, amount=take, created_at=as_of))
        applied += take
    CreditUsage.objects.bulk_create(usages)
    return applied


def balances_for(account_ids: list[int], currency: str, as_of: datetime) -> dict[int, int]:
    """Credit balance per account, in one query (the invoice sweep uses it to skip empty ledgers)."""
    rows = (CreditGrant.objects.filter(account_id__in=account_ids, currency=currency, remaining__gt=0)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=as_of))
            .values("account_id").annotate(s=Sum("remaining")))
    return {row["account_id"]: row["s"] for row in rows}
