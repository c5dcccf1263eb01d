"""The hosted invoice page: status, lines, due date and how to pay (PIX QR code and copy-and-paste
code, boleto digitable line and PDF); a paid invoice shows its receipt."""

from functools import lru_cache

import segno
from django.views.decorators.http import require_GET

from cobrador.core import clock
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.notifications import formatting
from cobrador.pages import links
from cobrador.pages.views.common import not_found, render_page
from cobrador.payments.models import Payment

PAID_STATUSES = ("succeeded", "refunded")
INVOICE_FIELDS = ("public_id", "organization", "account", "number", "status", "currency", "subtotal", "discount",
                  "credit_applied", "total", "amount_paid", "amount_due", "due_date", "paid_at")
PAYMENT_FIELDS = ("public_id", "method", "status", "pix_copy_paste", "boleto_line", "boleto_url", "expires_at",
                  "paid_at")


@lru_cache(maxsize=2048)
def pix_qr_data_uri(copy_paste: str) -> str:
    """The PIX QR code as an inline SVG image, drawn from the copy-and-paste (BR Code) payload. Drawing
    one takes ~50 ms (segno tries all eight masks); a payload never changes, so each web process draws
    it once for all the views of its invoice."""
    return segno.make(copy_paste, error="m").svg_data_uri(scale=5, border=2)


@require_GET
def invoice_page(request, token: str):
    link = links.resolve_for(request, "invoice", token)
    if link is None:
        return not_found(request)
    # Only what the page shows: the page is opened far more often than the API reads an invoice.
    invoice = (Invoice.objects.select_related("organization", "account")
               .only(*INVOICE_FIELDS, "organization__name", "organization__timezone", "account__locale")
               .filter(organization_id=link.organization_id, public_id=link.object_id).first())
    if invoice is None:
        return not_found(request)
    locale, currency = invoice.account.locale, invoice.currency
    timezone = invoice.organization.timezone
    payments = list(Payment.objects.filter(invoice=invoice).only(*PAYMENT_FIELDS).order_by("-pk")[:20])
    open_ = invoice.status == "open"
    pix = next((p for p in payments if open_ and p.method == "pix" and p.pix_copy_paste
                and p.status == "pending"), None)
    boleto = next((p for p in payments if open_ and p.method == "bank_slip" and p.boleto_line
                   and p.status == "pending"), None)
    paid_by = next((p for p in payments if p.status in PAID_STATUSES and p.paid_at), None)
    money = lambda amount: formatting.money(amount, currency, locale)  # noqa: E731
    context = {
        "invoice": invoice,
        "lines": [{"description": description, "quantity": quantity, "amount": money(amount)}
                  for description, quantity, amount in InvoiceLine.objects.filter(invoice=invoice).order_by("pk")
                  .values_list("description", "quantity", "amount")],
        "subtotal": money(invoice.subtotal), "discount": money(invoice.discount) if invoice.discount else "",
        "credit": money(invoice.credit_applied) if invoice.credit_applied else "",
        "total": money(invoice.total), "amount_due": money(invoice.amount_due),
        "due_date": formatting.day(invoice.due_date, locale),
        "overdue": open_ and invoice.due_date < formatting.local_date(clock.now(), timezone),
        "pix": {"code": pix.pix_copy_paste, "qr": pix_qr_data_uri(pix.pix_copy_paste),
                "expires_at": formatting.day(pix.expires_at, locale, timezone)} if pix else None,
        "boleto": {"line": boleto.boleto_line, "url": boleto.boleto_url,
                   "expires_at": formatting.day(boleto.expires_at, locale, timezone)} if boleto else None,
        "receipt": {"paid_at": formatting.day(invoice.paid_at or paid_by.paid_at, locale, timezone),
                    "amount": money(invoice.amount_paid or invoice.total),
                    "method": paid_by.method if paid_by else "",
                    "payment_id": paid_by.public_id if paid_by else ""}
        if invoice.status == "paid" and (invoice.paid_at or paid_by) else None,
    }
    return render_page(request, "pages/invoice.html", organization=invoice.organization, locale=locale,
                       context=context)
