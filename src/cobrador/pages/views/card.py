"""The hosted card update page, where expiring-card and payment-failed notices send the customer (when
the organization has no update_card_url of its own).

The card never reaches cobrador. The page's script (static/pages/js/card.js) posts it from the
customer's browser straight to the gateway's tokenization endpoint with the gateway's public key
(Pagar.me's `POST /tokens?appId=<public key>`; the built-in sandbox's `/sandbox/core/v5/tokens`), and
posts only the one-time token it gets back to this page. The card fields have no `name`, so even a
browser without the script submits nothing of them. Here the token is exchanged for a stored card at
the gateway (outside any transaction), and the card is attached as the account's default through
customers.services, in one transaction: `payment_method.attached` goes out and the dunning sink
enqueues the immediate retry of the account's invoices in dunning.
"""

import re

from django.db import transaction
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext
from django.views.decorators.http import require_http_methods

from cobrador.core.errors import ApiError
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.customers.services import attach_payment_method
from cobrador.gateways.base import Customer, GatewayError
from cobrador.gateways.registry import config_for_method, gateway_for
from cobrador.pages import links
from cobrador.pages.views.common import LANGUAGES, not_found, render_page

CARD_TOKEN = re.compile(r"token_[A-Za-z0-9_:.\-]{1,1000}")


def _account(link) -> BillingAccount | None:
    return (BillingAccount.objects.select_related("organization")
            .filter(organization_id=link.organization_id, public_id=link.object_id).first())


def _gateway(organization):
    """The gateway serving cards for the organization, if it can tokenize in the browser; else None."""
    try:
        gateway = gateway_for(config_for_method(organization, "card"))
    except ApiError:  # a live organization with no card gateway
        return None
    if not hasattr(gateway, "store_card"):  # a provider with no browser tokenization
        return None
    public_key = gateway.public_key()
    if not public_key:
        return None
    return gateway, {"tokenize_url": gateway.tokenize_url(), "public_key": public_key}


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


def _message(account, text: str) -> str:
    with translation.override(LANGUAGES.get(account.locale, "pt-br")):
        return gettext(text)


@require_http_methods(["GET", "POST"])
def card_page(request, token: str):
    link = links.resolve_for(request, "card", token)
    account = _account(link) if link is not None else None
    if account is None:
        return not_found(request)
    gateway = _gateway(account.organization)
    if request.method == "GET":
        return _render(request, account, token, gateway)
    if gateway is None:
        return _render(request, account, token, gateway, status=409)
    card_token = request.POST.get("card_token", "")
    if not CARD_TOKEN.fullmatch(card_token):
        return _render(request, account, token, gateway, status=400,
                       error=_message(account, "The card could not be read. Please type it again."))
    customer = Customer(name=account.name, email=account.email, document=account.document,
                        document_type=account.document_type, address=account.address or {},
                        reference=account.public_id)
    try:
        stored = gateway[0].store_card(token=card_token, customer=customer)  # outside any transaction
    except GatewayError:
        return _render(request, account, token, gateway, status=422,
                       error=_message(account, "The card was not accepted. Please check it and try again."))
    try:
        with transaction.atomic():
            attach_payment_method(account=account, type="card", brand=stored.brand[:20], last4=stored.last4,
                                  exp_month=stored.exp_month, exp_year=stored.exp_year,
                                  gateway_token=stored.gateway_token, set_default=True)
    except ApiError as exc:  # expired card, the same stored card twice
        return _render(request, account, token, gateway, status=exc.status,
                       error=_message(account, "The card was not accepted. Please check it and try again."))
    return redirect(reverse("pages:card", kwargs={"token": token}) + "?updated=1")
