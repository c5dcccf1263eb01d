""""Pay now by card" on the hosted invoice page: the customer types a card, the browser tokenizes it at the
gateway (card_form.py, as on the card update page) and posts only the token to the invoice page's link.

Here, for an open invoice with an amount due and no payment in flight:
1. the token becomes a card stored at the gateway (outside any transaction);
2. the card is attached to the invoice's billing account through customers.services (`payment_method.attached`
   goes out as usual); with "save this card" unticked it is attached `single_use`: never the default, and
   dunning does not retry the account's other invoices with it;
3. the invoice is charged with that card at once through payments.charging.charge_invoice, the service
   behind POST /v1/invoices/{id}/pay (source "page"): the Payment row with its idempotency key, the
   partial unique index that allows one charge in flight per invoice (a double submit charges once: the
   second is refused while the first is in flight, and finds the invoice paid after), the events
   (payment.succeeded, invoice.paid, ...), dunning's closure and the webhooks are the usual ones;
4. the card's fate, by one rule: with "save this card for future charges" ticked (the default) and a
   charge that did not fail, the card becomes the account's default method (renewals and dunning charge
   it); unticked, or declined, the card is detached at once and nothing charges it again. A card this
   request did not attach (the same token posted twice) is left to the request that attached it.

A paid, void or uncollectible invoice, one with nothing due and one with a payment in flight are refused
before anything is stored or charged. The answer is an `Answer`: a redirect to the page, which then shows
the receipt (or the payment still processing), or the invoice again with a message (and the form).
"""

from dataclasses import dataclass

from django.db import transaction
from django.utils.translation import gettext_noop

from cobrador.core.errors import ApiError
from cobrador.customers.errors import PaymentMethodAlreadyAttached
from cobrador.customers.models import PaymentMethod
from cobrador.customers.services import attach_payment_method, detach_payment_method, set_default_payment_method
from cobrador.gateways.base import GatewayError
from cobrador.invoicing.models import Invoice
from cobrador.pages.views.card_form import (
    NOT_ACCEPTED,
    NOT_READ,
    card_fields,
    card_gateway,
    message,
    posted_token,
    store_card,
)
from cobrador.payments.charging import charge_invoice
from cobrador.payments.errors import InvoiceNotPayable, PaymentInFlight
from cobrador.payments.models import Payment
from cobrador.payments.services import payment_in_progress

SOURCE = "page"

ALREADY_PAID = gettext_noop("This invoice is already paid.")
VOIDED = gettext_noop("This invoice was voided: there is nothing to pay.")
NOT_PAYABLE_HERE = gettext_noop("This invoice cannot be paid here. Please contact us.")
NOTHING_DUE = gettext_noop("There is nothing to pay on this invoice.")
PROCESSING = gettext_noop("A payment of this invoice is being processed. Reload this page in a moment.")
UNAVAILABLE = gettext_noop("This invoice cannot be paid by card here. Please use another way to pay.")
DECLINED = gettext_noop("Your card was declined: %(reason)s Please try another card.")


@dataclass(frozen=True)
class Answer:
    """303: show the page again by a redirect (its receipt, or the payment still processing). Otherwise
    the page with `error` (or `notice`, not an error) and `status`."""

    status: int = 303
    error: str = ""
    notice: str = ""


def refusal(invoice: Invoice, locale: str) -> Answer | None:
    """Why `invoice` cannot be paid by card now, or None."""
    if invoice.status == "paid":
        return Answer(409, error=message(locale, ALREADY_PAID))
    if invoice.status == "void":
        return Answer(409, error=message(locale, VOIDED))
    if invoice.status != "open":  # uncollectible (written off: settled with the organization), draft
        return Answer(409, error=message(locale, NOT_PAYABLE_HERE))
    if invoice.amount_due <= 0:
        return Answer(409, error=message(locale, NOTHING_DUE))
    if payment_in_progress(invoice.pk):
        return Answer(409, notice=message(locale, PROCESSING))
    return None


def pay_by_card(request, *, invoice_id: int) -> Answer:
    invoice = Invoice.objects.select_related("organization", "account").get(pk=invoice_id)
    account = invoice.account
    locale = account.locale
    refused = refusal(invoice, locale)
    if refused is not None:
        return refused
    gateway = card_gateway(invoice.organization)
    if gateway is None:
        return Answer(409, error=message(locale, UNAVAILABLE))
    card_token = posted_token(request)
    if card_token is None:
        return Answer(400, error=message(locale, NOT_READ))
    save = request.POST.get("save_card") == "1"
    try:
        stored = store_card(gateway, account, card_token)  # outside any transaction
    except GatewayError:
        return Answer(422, error=message(locale, NOT_ACCEPTED))
    try:
        with transaction.atomic():
            card = attach_payment_method(account=account, single_use=not save, **card_fields(stored))
            attached_here = True
    except PaymentMethodAlreadyAttached:  # the same token posted twice: the card the first post attached
        card, attached_here = PaymentMethod.objects.filter(account=account, type="card", status="active",
                                                            gateway_token=stored.gateway_token).first(), False
        if card is None:  # detached meanwhile by the first post (declined, or not to be saved)
            return _after_the_other_post(invoice, locale)
    except ApiError:  # an expired card
        return Answer(422, error=message(locale, NOT_ACCEPTED))
    try:
        payment = charge_invoice(organization=invoice.organization, invoice=invoice, payment_method=card,
                                 source=SOURCE)
    except ApiError as exc:
        if attached_here:
            _keep_or_detach(card, keep=False)
        if isinstance(exc, InvoiceNotPayable | PaymentInFlight):  # charged meanwhile: another post, a dunning retry
            return _after_the_other_post(invoice, locale)
        return Answer(409, error=message(locale, UNAVAILABLE))  # the card or the gateway configuration went away
    if attached_here:
        _keep_or_detach(card, keep=save and payment.status != "failed")
    if payment.status == "failed":
        return Answer(402, error=message(locale, DECLINED, reason=_reason(payment, locale)))
    return Answer()


def _after_the_other_post(invoice: Invoice, locale: str) -> Answer:
    invoice.refresh_from_db(fields=["status", "amount_due"])
    return refusal(invoice, locale) or Answer(409, notice=message(locale, PROCESSING))


def _keep_or_detach(card: PaymentMethod, *, keep: bool) -> None:
    """After the charge, whose outcome stands whatever happens here."""
    try:
        with transaction.atomic():
            if keep:
                set_default_payment_method(payment_method=card)
            else:
                detach_payment_method(payment_method=card)
    except ApiError:  # detached meanwhile through the API: it stays detached
        pass


def _reason(payment: Payment, locale: str) -> str:
    reason = payment.failure_message.strip() or message(locale, NOT_ACCEPTED)
    return reason if reason.endswith((".", "!", "?")) else reason + "."
