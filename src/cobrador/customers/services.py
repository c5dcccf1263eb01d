"""Billing accounts, their payment methods and credit grants. Services never commit: callers do.

An account with active payment methods has exactly one default: the first one attached becomes it,
a new default replaces the old one in the same transaction, and detaching the default promotes the
most recently attached method left. Each change of payment methods locks the account row, so
concurrent attaches cannot both become "the first".
"""

from datetime import datetime

from django.db.models import OuterRef, Q, Subquery, Sum

from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.customers.credits import grant_credit
from cobrador.customers.documents import InvalidDocument, normalize_document
from cobrador.customers.errors import PaymentMethodAlreadyAttached, PaymentMethodDetached
from cobrador.customers.models import BillingAccount, CreditGrant, PaymentMethod
from cobrador.events.services import record_event

CARD_FIELDS = ("brand", "last4", "exp_month", "exp_year", "gateway_token")


# --- billing accounts -------------------------------------------------------------------------------------

def accounts_with_default_payment_method(queryset=None):
    """Accounts annotated with their default payment method's public id (one query for a whole page)."""
    queryset = BillingAccount.objects.all() if queryset is None else queryset
    default = PaymentMethod.objects.filter(account=OuterRef("pk"), is_default=True, status="active")
    return queryset.annotate(default_payment_method_public_id=Subquery(default.values("public_id")[:1]))


def _default_payment_method_id(account: BillingAccount) -> str | None:
    if hasattr(account, "default_payment_method_public_id"):
        return account.default_payment_method_public_id
    return (PaymentMethod.objects.filter(account=account, is_default=True, status="active")
            .values_list("public_id", flat=True).first())


def account_data(account: BillingAccount) -> dict:
    return {
        "id": account.public_id,
        "object": "billing_account",
        "name": account.name,
        "email": account.email,
        "document": account.document or None,
        "document_type": account.document_type or None,
        "address": account.address or None,
        "legal_name": account.legal_name or None,
        "fiscal_email": account.fiscal_email or None,
        "locale": account.locale,
        "status": account.status,
        "suspended_at": account.suspended_at,
        "suspension_reason": account.suspension_reason or None,
        "default_payment_method_id": _default_payment_method_id(account),
        "metadata": account.metadata,
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


def _document_fields(document: str | None) -> dict:
    if not document:
        return {"document": "", "document_type": ""}
    try:
        normalized, document_type = normalize_document(document)
    except InvalidDocument as exc:
        raise ValidationFailed(f"document: {exc}", field="document") from exc
    return {"document": normalized, "document_type": document_type}


def _stored_address(address: dict | None) -> dict:
    """The address as stored: without a city_code that was not given."""
    return {key: value for key, value in (address or {}).items() if key != "city_code" or value}


def create_billing_account(*, organization, name: str, email: str, document: str | None = None,
                           address: dict | None = None, locale: str = "pt-BR",
                           metadata: dict | None = None, legal_name: str | None = None,
                           fiscal_email: str | None = None) -> BillingAccount:
    now = clock.now()
    account = BillingAccount.objects.create(
        organization=organization, name=name, email=email, address=_stored_address(address), locale=locale,
        legal_name=legal_name or "", fiscal_email=fiscal_email or "",
        metadata=metadata or {}, created_at=now, updated_at=now, **_document_fields(document))
    record_event(organization=organization, type="billing_account.created", data=account_data(account))
    return account


def update_billing_account(*, account: BillingAccount, changes: dict) -> BillingAccount:
    """Apply already-typed `changes`; emits billing_account.updated when something changed."""
    values = dict(changes)
    if "document" in values:
        values.update(_document_fields(values.pop("document")))
    if "address" in values:
        values["address"] = _stored_address(values["address"])
    for field in ("legal_name", "fiscal_email"):  # null removes them
        if field in values:
            values[field] = values[field] or ""
    changed = [field for field, value in values.items() if getattr(account, field) != value]
    for field in changed:
        setattr(account, field, values[field])
    if changed:
        account.updated_at = clock.now()
        account.save(update_fields=[*changed, "updated_at"])
        _account_updated(account, changed)
    return account


def _account_updated(account: BillingAccount, changed_fields: list[str]) -> None:
    record_event(organization=account.organization, type="billing_account.updated",
                 data={**account_data(account), "changed_fields": changed_fields})


# --- payment methods --------------------------------------------------------------------------------------

def payment_method_data(payment_method: PaymentMethod) -> dict:
    is_card = payment_method.type == "card"
    return {
        "id": payment_method.public_id,
        "object": "payment_method",
        "account_id": payment_method.account.public_id,
        "type": payment_method.type,
        "brand": payment_method.card_brand if is_card else None,
        "last4": payment_method.card_last4 if is_card else None,
        "exp_month": payment_method.exp_month,
        "exp_year": payment_method.exp_year,
        "is_default": payment_method.is_default,
        "status": payment_method.status,
        "created_at": payment_method.created_at,
        "detached_at": payment_method.detached_at,
    }


def _lock(account: BillingAccount) -> BillingAccount:
    return BillingAccount.objects.select_for_update().select_related("organization").get(pk=account.pk)


def _check_card(card: dict, type: str, now: datetime) -> None:  # noqa: A002
    if type != "card":
        for field in CARD_FIELDS:
            if card.get(field) is not None:
                raise ValidationFailed(f"{field}: only a card takes it", field=field)
        return
    for field in CARD_FIELDS:
        if card.get(field) is None:
            raise ValidationFailed(f"{field}: required for a card", field=field)
    if card["exp_year"] < now.year:
        raise ValidationFailed("exp_year: the card has expired", field="exp_year")
    if card["exp_year"] == now.year and card["exp_month"] < now.month:
        raise ValidationFailed("exp_month: the card has expired", field="exp_month")


def _make_default(account: BillingAccount, payment_method: PaymentMethod) -> None:
    # Unset the old default before setting the new one: the partial unique index allows one at a time.
    PaymentMethod.objects.filter(account=account, is_default=True).exclude(pk=payment_method.pk).update(
        is_default=False)
    payment_method.is_default = True


def attach_payment_method(*, account: BillingAccount, type: str, brand: str | None = None,  # noqa: A002
                          last4: str | None = None, exp_month: int | None = None, exp_year: int | None = None,
                          gateway_token: str | None = None, set_default: bool = False,
                          single_use: bool = False, locked: bool = False) -> PaymentMethod:
    """`locked`: the caller read `account` row-locked (select_for_update) with its organization in
    this transaction; otherwise it is locked and read again here. A `single_use` method (see the
    model) is never made the default."""
    now = clock.now()
    card = {"brand": brand, "last4": last4, "exp_month": exp_month, "exp_year": exp_year,
            "gateway_token": gateway_token}
    _check_card(card, type, now)
    if not locked:
        account = _lock(account)
    # An account has a handful of active methods: one query reads what the checks need.
    active = list(PaymentMethod.objects.filter(account=account, status="active").values_list(
        "type", "gateway_token", "is_default"))
    if type == "card" and ("card", gateway_token) in {(t, token) for t, token, _ in active}:
        raise PaymentMethodAlreadyAttached("gateway_token: this card is already attached to the account",
                                           field="gateway_token")
    if type != "card" and any(t == type for t, _, _ in active):
        raise PaymentMethodAlreadyAttached(f"type: the account already has an active {type} payment method",
                                           field="type")
    had_default = any(is_default for _, _, is_default in active)
    payment_method = PaymentMethod(
        organization_id=account.organization_id, account=account, type=type, card_brand=brand or "",
        card_last4=last4 or "", exp_month=exp_month, exp_year=exp_year, gateway_token=gateway_token or "",
        single_use=single_use, created_at=now)
    if not single_use and set_default and had_default:
        _make_default(account, payment_method)
    elif not single_use and not had_default:
        payment_method.is_default = True  # the first: there is no old default to unset
    payment_method.save()
    record_event(organization=account.organization, type="payment_method.attached",
                 data=payment_method_data(payment_method))
    if payment_method.is_default:
        account.default_payment_method_public_id = payment_method.public_id  # what account_data shows
        _default_changed(account)
    return payment_method


def set_default_payment_method(*, payment_method: PaymentMethod) -> PaymentMethod:
    account = _lock(payment_method.account)
    payment_method.refresh_from_db()
    if payment_method.status != "active":
        raise PaymentMethodDetached("a detached payment method cannot be the default", field="is_default")
    if not payment_method.is_default:
        _make_default(account, payment_method)
        payment_method.save(update_fields=["is_default"])
        _default_changed(account)
    return payment_method


def detach_payment_method(*, payment_method: PaymentMethod) -> PaymentMethod:
    """Detach (idempotent: detaching a detached method changes nothing and emits nothing)."""
    account = _lock(payment_method.account)
    payment_method.refresh_from_db()
    if payment_method.status == "detached":
        return payment_method
    was_default = payment_method.is_default
    payment_method.status, payment_method.is_default, payment_method.detached_at = "detached", False, clock.now()
    payment_method.save(update_fields=["status", "is_default", "detached_at"])
    record_event(organization=account.organization, type="payment_method.detached",
                 data=payment_method_data(payment_method))
    if was_default:
        successor = (PaymentMethod.objects.filter(account=account, status="active")
                     .order_by("-created_at", "-pk").first())
        if successor is not None:
            successor.is_default = True
            successor.save(update_fields=["is_default"])
        _default_changed(account)
    return payment_method


def _default_changed(account: BillingAccount) -> None:
    account.updated_at = clock.now()
    account.save(update_fields=["updated_at"])
    _account_updated(account, ["default_payment_method_id"])


# --- credits ----------------------------------------------------------------------------------------------

def credit_grant_data(grant: CreditGrant, *, as_of: datetime | None = None) -> dict:
    as_of = as_of or clock.now()
    if grant.expires_at is not None and grant.expires_at <= as_of:
        status = "expired"
    elif grant.remaining == 0:
        status = "used"
    else:
        status = "available"
    return {
        "id": grant.public_id,
        "object": "credit_grant",
        "account_id": grant.account.public_id,
        "amount": grant.amount,
        "remaining": grant.remaining,
        "currency": grant.currency,
        "reason": grant.reason,
        "expires_at": grant.expires_at,
        "status": status,
        "created_at": grant.created_at,
    }


def grant_account_credit(*, account: BillingAccount, amount: int, currency: str | None = None, reason: str = "",
                         expires_at: datetime | None = None) -> CreditGrant:
    if amount <= 0:
        raise ValidationFailed("amount: must be positive", field="amount")
    if expires_at is not None and expires_at <= clock.now():
        raise ValidationFailed("expires_at: must be in the future", field="expires_at")
    return grant_credit(account=account, amount=amount, currency=currency or account.organization.default_currency,
                        reason=reason, expires_at=expires_at)


def credit_balances(*, account: BillingAccount, as_of: datetime | None = None) -> dict[str, int]:
    """Usable credit per currency at `as_of`: what remains of unexpired grants."""
    as_of = as_of or clock.now()
    rows = (CreditGrant.objects.filter(account=account, remaining__gt=0)
            .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=as_of))
            .values("currency").annotate(total=Sum("remaining")).order_by("currency"))
    return {row["currency"]: row["total"] for row in rows}
