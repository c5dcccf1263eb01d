"""The business conditions of billing accounts and their payment methods, each with its stable `type`."""

from cobrador.core.errors import Conflict


class PaymentMethodAlreadyAttached(Conflict):
    """The same card (gateway token), or a second active boleto/PIX method, on one account."""
    type = "payment_method_already_attached"


class PaymentMethodDetached(Conflict):
    type = "payment_method_detached"
