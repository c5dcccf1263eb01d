from typing import Literal

from django.db import transaction
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core import clock
from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.customers import services
from cobrador.customers.errors import PaymentMethodAlreadyAttached, PaymentMethodDetached
from cobrador.customers.models import BillingAccount, CreditGrant, PaymentMethod
from cobrador.customers.schemas import (
    BillingAccountCreate,
    BillingAccountOut,
    BillingAccountPage,
    BillingAccountUpdate,
    CreditGrantCreate,
    CreditGrantOut,
    CreditGrantPage,
    PaymentMethodAttach,
    PaymentMethodOut,
    PaymentMethodPage,
    PaymentMethodUpdate,
)
from cobrador.events.services import recorded_together

router = Router(tags=["billing accounts"])
register_path_id("account_id", BillingAccount)
register_path_id("payment_method_id", PaymentMethod)


def _account(request, account_id: str) -> BillingAccount:
    return get_object_or_404(services.accounts_with_default_payment_method().select_related("organization"),
                             organization=request.auth, public_id=account_id)


def _payment_method(request, account_id: str, payment_method_id: str) -> PaymentMethod:
    return get_object_or_404(PaymentMethod.objects.select_related("account__organization"),
                             organization=request.auth, account__public_id=account_id,
                             public_id=payment_method_id)


@router.post("/billing_accounts", response={201: BillingAccountOut}, summary="Create a billing account")
def create_billing_account(request, payload: BillingAccountCreate):
    with transaction.atomic():
        account = services.create_billing_account(organization=request.auth, **payload.model_dump())
    return Status(201, services.account_data(account))


@router.get("/billing_accounts", response=BillingAccountPage, summary="List billing accounts")
def list_billing_accounts(request, email: str | None = None, status: Literal["active", "suspended"] | None = None,
                          limit: Limit = 20, cursor: str | None = None):
    """Newest first. `email` matches exactly, ignoring case."""
    accounts = services.accounts_with_default_payment_method().filter(organization=request.auth)
    if email:
        accounts = accounts.filter(email__iexact=email.strip())
    if status:
        accounts = accounts.filter(status=status)
    return paginate(accounts, cursor=cursor, limit=limit, serialize=services.account_data)


@router.get("/billing_accounts/{account_id}", response=BillingAccountOut, summary="Retrieve a billing account")
def get_billing_account(request, account_id: str):
    return services.account_data(_account(request, account_id))


@router.patch("/billing_accounts/{account_id}", response=BillingAccountOut, summary="Update a billing account")
def update_billing_account(request, account_id: str, payload: BillingAccountUpdate):
    with transaction.atomic():
        account = services.update_billing_account(account=_account(request, account_id),
                                                  changes=payload.model_dump(exclude_unset=True))
    return services.account_data(account)


@router.post("/billing_accounts/{account_id}/payment_methods",
             response={201: PaymentMethodOut, **errors(PaymentMethodAlreadyAttached)},
             summary="Attach a payment method")
def attach_payment_method(request, account_id: str, payload: PaymentMethodAttach):
    # One round of events: payment_method.attached and (for a new default) billing_account.updated.
    with transaction.atomic(), recorded_together():
        account = get_object_or_404(BillingAccount.objects.select_for_update().select_related("organization"),
                                    organization=request.auth, public_id=account_id)
        payment_method = services.attach_payment_method(account=account, locked=True, **payload.model_dump())
    return Status(201, services.payment_method_data(payment_method))


@router.get("/billing_accounts/{account_id}/payment_methods", response=PaymentMethodPage,
            summary="List an account's payment methods")
def list_payment_methods(request, account_id: str, status: Literal["active", "detached"] = "active",
                         limit: Limit = 20, cursor: str | None = None):
    methods = PaymentMethod.objects.filter(account=_account(request, account_id), status=status).select_related(
        "account")
    return paginate(methods, cursor=cursor, limit=limit, serialize=services.payment_method_data)


@router.get("/billing_accounts/{account_id}/payment_methods/{payment_method_id}", response=PaymentMethodOut,
            summary="Retrieve a payment method")
def get_payment_method(request, account_id: str, payment_method_id: str):
    return services.payment_method_data(_payment_method(request, account_id, payment_method_id))


@router.patch("/billing_accounts/{account_id}/payment_methods/{payment_method_id}",
              response={200: PaymentMethodOut, **errors(PaymentMethodDetached)},
              summary="Make a payment method the account's default")
def update_payment_method(request, account_id: str, payment_method_id: str, payload: PaymentMethodUpdate):
    with transaction.atomic():
        payment_method = services.set_default_payment_method(
            payment_method=_payment_method(request, account_id, payment_method_id))
    return services.payment_method_data(payment_method)


@router.delete("/billing_accounts/{account_id}/payment_methods/{payment_method_id}", response=PaymentMethodOut,
               summary="Detach a payment method")
def detach_payment_method(request, account_id: str, payment_method_id: str):
    """The method stays listed under `status=detached`. Detaching the default makes the most recently
    attached remaining method the default. Detaching twice changes nothing."""
    with transaction.atomic():
        payment_method = services.detach_payment_method(
            payment_method=_payment_method(request, account_id, payment_method_id))
    return services.payment_method_data(payment_method)


@router.post("/billing_accounts/{account_id}/credits", response={201: CreditGrantOut},
             summary="Grant credit to an account")
def grant_credit(request, account_id: str, payload: CreditGrantCreate):
    """Credit is applied to the account's next invoices in the same currency, soonest-expiring grants first."""
    with transaction.atomic():
        grant = services.grant_account_credit(account=_account(request, account_id), **payload.model_dump())
    return Status(201, services.credit_grant_data(grant))


@router.get("/billing_accounts/{account_id}/credits", response=CreditGrantPage,
            summary="List an account's credit grants and balances")
def list_credits(request, account_id: str, limit: Limit = 20, cursor: str | None = None):
    account = _account(request, account_id)
    as_of = clock.now()
    page = paginate(CreditGrant.objects.filter(account=account).select_related("account"), cursor=cursor,
                    limit=limit, serialize=lambda grant: services.credit_grant_data(grant, as_of=as_of))
    return {**page, "balances": services.credit_balances(account=account, as_of=as_of)}
