"""What the card update page and the invoice page's "pay now by card" share: the browser tokenizes the
card at the gateway and cobrador receives only the one-time token.

The page shows `pages/_card_form.html` with the gateway's tokenization endpoint and public key
(`card_gateway`); its script (static/pages/js/card.js) posts the card from the customer's browser straight
to that endpoint (Pagar.me's `POST /tokens?appId=<public key>`; the built-in sandbox's
`/sandbox/core/v5/tokens`) and posts only the token it gets back to the page. The card fields have no
`name`, so even a browser without the script submits nothing of them. The view turns the token into a
stored card at the gateway with `store_card` (outside any transaction) and attaches it through
customers.services as its own rule says.
"""

import re

from django.utils import translation
from django.utils.translation import gettext, gettext_noop

from cobrador.core.errors import ApiError
from cobrador.gateways.base import Customer, StoredCard
from cobrador.gateways.registry import config_for_method, gateway_for
from cobrador.pages.views.common import LANGUAGES

CARD_TOKEN = re.compile(r"token_[A-Za-z0-9_:.\-]{1,1000}")
NOT_READ = gettext_noop("The card could not be read. Please type it again.")
NOT_ACCEPTED = gettext_noop("The card was not accepted. Please check it and try again.")


def card_gateway(organization):
    """(gateway, what the form needs) for the organization's card gateway when it can tokenize in the
    browser; else None."""
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


def posted_token(request) -> str | None:
    """The card token the page's script posted, or None when it is not one."""
    card_token = request.POST.get("card_token", "")
    return card_token if CARD_TOKEN.fullmatch(card_token) else None


def store_card(gateway, account, card_token: str) -> StoredCard:
    """The token becomes a card stored at the gateway for `account` (call outside any transaction).
    GatewayError when the gateway refuses it (forged, expired, spent)."""
    customer = Customer(name=account.name, email=account.email, document=account.document,
                        document_type=account.document_type, address=account.address or {},
                        reference=account.public_id)
    return gateway[0].store_card(token=card_token, customer=customer)


def card_fields(stored: StoredCard) -> dict:
    """customers.services.attach_payment_method's card arguments for a stored card."""
    return {"type": "card", "brand": stored.brand[:20], "last4": stored.last4, "exp_month": stored.exp_month,
            "exp_year": stored.exp_year, "gateway_token": stored.gateway_token}


def message(locale: str, text: str, **values) -> str:
    """`text` in the customer's language (the page's), with `values` filled in."""
    with translation.override(LANGUAGES.get(locale, "pt-br")):
        return gettext(text) % values if values else gettext(text)
