"""The business conditions of invoices, each with its stable `type`."""

from cobrador.core.errors import Conflict


class InvoiceNotVoidable(Conflict):
    type = "invoice_not_voidable"
