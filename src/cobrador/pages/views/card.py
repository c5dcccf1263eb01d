"""The hosted card update page, where expiring-card and payment-failed notices send the customer (when
the organization has no update_card_url of its own).

The card never reaches cobrador: the page tokenizes it in the browser (see card_form.py, shared with the
invoice page's "pay now by card"). Here the token is exchanged for a stored card at the gateway (outside
any transaction), and the card is attached as the account's default through customers.services, in one
transaction: `payment_method.attached` goes out and the dunning sink enqueues the immediate retry of the
account's invoices in dunning.
"""

from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from cobrador.core.errors import ApiError
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.customers.services import attach_payment_method
from cobrador.gateways.base import GatewayError
from cobrador.pages import links
from cobrador.pages.views.card_form import (
    NOT_ACCEPTED,
    NOT_READ,
    card_fields,
    card_gateway,
    message,
    posted_token,
    store_card,
)
from cobrador.pages.views.common import not_found, render_page


def _account(link) -> BillingAccount | None:
    return (BillingAccount.objects.select_related("organization")
            .filter(organization_id=link.organization_id, public_id=link.object_id).first())


def _render(request, account, token: str, gateway, *, error: str = "", status: int = 200):
    card = (PaymentMethod.objects.filter(account=account, type="card", status="active", is_default=True)
            .only("card_brand", "card_last4", "exp_month", "exp_year").first())
    context = {
        "token": token, "account_name": account.name, "error": error, "gateway": gateway[1] if gateway else None,
        "updated": request.GET.get("updated") == "1" and card is not None,
        "current": {"brand": card.card_brand, "last4": card.card_last4,
                    "exp": f"{card.exp_month:02d}/{card.exp_year}"} if card is not None else None,
    }
    return render_page(request, "pages/card.html", organization=account.organization, locale=account.locale,
                       context=context, status=status)


@require_http_methods(["GET", "POST"])
def card_page(request, token: str):
    link = links.resolve_for(request, "card", token)
    account = _account(link) if link is not None else None
    if account is None:
        return not_found(request)
    gateway = card_gateway(account.organization)
    if request.method == "GET":
        return _render(request, account, token, gateway)
    if gateway is None:
        return _render(request, account, token, gateway, status=409)
    card_token = posted_token(request)
    if card_token is None:
        return _render(request, account, token, gateway, status=400, error=message(account.locale, NOT_READ))
    try:
        stored = store_card(gateway, account, card_token)  # outside any transaction
    except GatewayError:
        return _render(request, account, token, gateway, status=422, error=message(account.locale, NOT_ACCEPTED))
    try:
        with transaction.atomic():
            attach_payment_method(account=account, **card_fields(stored), set_default=True)
    except ApiError as exc:  # expired card, the same stored card twice
        return _render(request, account, token, gateway, status=exc.status,
                       error=message(account.locale, NOT_ACCEPTED))
    return redirect(reverse("pages:card", kwargs={"token": token}) + "?updated=1")
