"""The business conditions of charging and refunding, each with its stable `type`."""

from cobrador.core.errors import ApiError, Conflict, ValidationFailed


class InvoiceNotPayable(Conflict):
    type = "invoice_not_payable"


class PaymentInFlight(Conflict):
    type = "payment_in_flight"


class PaymentMethodUnusable(ValidationFailed):
    """No default method on the account, or a method that is not an active one of the invoice's account."""
    type = "payment_method_unusable"


class PaymentNotRefundable(Conflict):
    type = "payment_not_refundable"


class PaymentFullyRefunded(Conflict):
    type = "payment_fully_refunded"


class RefundFailed(ApiError):
    status = 422
    type = "refund_failed"
