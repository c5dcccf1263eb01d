"""The NFS-e app's business errors, each with a stable `type` (the JSON error shape of core.errors)."""

from cobrador.core.errors import Conflict, NotFound, ValidationFailed


class ServiceInvoiceNotFound(NotFound):
    type = "service_invoice_not_found"


class FiscalSettingsInvalid(ValidationFailed):
    type = "fiscal_settings_invalid"


class ServiceInvoiceNotRetryable(Conflict):
    type = "service_invoice_not_retryable"


class ServiceInvoiceNotCancelable(Conflict):
    type = "service_invoice_not_cancelable"


# Per route, for OpenAPI: the 4xx answers each route can give.
ERROR_RESPONSES = {
    "settings": (FiscalSettingsInvalid,),
    "get": (ServiceInvoiceNotFound,),
    "retry": (ServiceInvoiceNotFound, ServiceInvoiceNotRetryable),
    "cancel": (ServiceInvoiceNotFound, ServiceInvoiceNotCancelable),
}
