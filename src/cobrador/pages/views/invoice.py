"""The hosted invoice page: status, lines, due date and how to pay (PIX QR code and copy-and-paste
code, boleto digitable line and PDF); a paid invoice shows its receipt.

The page is opened far more often than anything on it changes, so each web process keeps the pages it
rendered (`_rendered`, bounded) keyed by the link and a fingerprint of everything the page shows: one
SQL query reads the link, the invoice's fields, its organization's name, time zone and branding, the
account's language, its lines' count and its payments' count and last change, and the organization's
local day (for "overdue"). Any change to what the page shows changes the fingerprint, so a page is
never stale; an unchanged page costs that one query. (Profiled: five ORM queries and the template
render were ~90 % of the request; the PIX QR code, ~50 ms to draw, was already drawn once per process.)
On PostgreSQL the query is a prepared statement of each connection: planning its joins took ~10x
longer than running them.
"""

import threading
import weakref
from collections import OrderedDict
from functools import lru_cache

import segno
from django.db import connection
from django.http import HttpResponse
from django.template.loader import render_to_string
from django.utils import translation
from django.views.decorators.http import require_GET

from cobrador.core import clock
from cobrador.customers.models import BillingAccount
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.notifications import formatting
from cobrador.organizations.models import Organization
from cobrador.pages import links
from cobrador.pages.models import PageBranding, PageLink
from cobrador.pages.views.common import LANGUAGES, branding, not_found, private
from cobrador.payments.models import Payment

PAID_STATUSES = ("succeeded", "refunded")
INVOICE_FIELDS = ("public_id", "organization", "account", "number", "status", "currency", "subtotal", "discount",
                  "credit_applied", "total", "amount_paid", "amount_due", "due_date", "paid_at")
PAYMENT_FIELDS = ("public_id", "method", "status", "pix_copy_paste", "boleto_line", "boleto_url", "expires_at",
                  "paid_at")
CACHED_PAGES = 512


@lru_cache(maxsize=2048)
def pix_qr_data_uri(copy_paste: str) -> str:
    """The PIX QR code as an inline SVG image, drawn from the copy-and-paste (BR Code) payload. Drawing
    one takes ~50 ms (segno tries all eight masks); a payload never changes, so each web process draws
    it once for all the views of its invoice."""
    return segno.make(copy_paste, error="m").svg_data_uri(scale=5, border=2)


@lru_cache(maxsize=1)
def _fingerprint_sql() -> str:
    link, invoice, org, account = (m._meta.db_table for m in (PageLink, Invoice, Organization, BillingAccount))  # noqa: SLF001
    line, payment, brand = (m._meta.db_table for m in (InvoiceLine, Payment, PageBranding))  # noqa: SLF001
    return f"""
        SELECT i.id, i.organization_id, o.timezone, i.status, i.number, i.currency, i.subtotal, i.discount,
               i.credit_applied, i.total, i.amount_paid, i.amount_due, i.due_date, i.paid_at, o.name, a.locale,
               (SELECT COUNT(*) FROM {line} l WHERE l.invoice_id = i.id),
               (SELECT COUNT(*) FROM {payment} p WHERE p.invoice_id = i.id),
               (SELECT MAX(p.updated_at) FROM {payment} p WHERE p.invoice_id = i.id),
               (SELECT b.updated_at FROM {brand} b WHERE b.organization_id = i.organization_id)
        FROM {link} pl
        JOIN {invoice} i ON i.organization_id = pl.organization_id AND i.public_id = pl.object_id
        JOIN {org} o ON o.id = i.organization_id
        JOIN {account} a ON a.id = i.account_id
        WHERE pl.token_hash = %s AND pl.kind = 'invoice' AND pl.revoked_at IS NULL"""


STATEMENT = "cobrador_invoice_page_fingerprint"
_prepared = weakref.WeakKeyDictionary()  # the PostgreSQL connections (sessions) that prepared STATEMENT


def fingerprint(token: str) -> tuple | None:
    """Everything the invoice page behind `token` shows, in one query (None: no live link or invoice)."""
    if not token or len(token) > 100:
        return None
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # A prepared statement lives as long as its session, whatever transactions roll back.
            session = connection.connection
            if session not in _prepared:
                cursor.execute(f"PREPARE {STATEMENT}(text) AS {_fingerprint_sql().replace('%s', '$1')}")
                _prepared[session] = True
            cursor.execute(f"EXECUTE {STATEMENT}(%s)", [links.token_hash(token)])
        else:
            cursor.execute(_fingerprint_sql(), [links.token_hash(token)])
        row = cursor.fetchone()
    if row is None:
        return None
    today = formatting.local_date(clock.now(), row[2])
    return (*row, today)


_rendered: OrderedDict = OrderedDict()  # (token hash, fingerprint) -> page bytes, least recently used first
_rendered_lock = threading.Lock()


def _remember(key, body: bytes) -> None:
    with _rendered_lock:
        _rendered[key] = body
        _rendered.move_to_end(key)
        while len(_rendered) > CACHED_PAGES:
            _rendered.popitem(last=False)


def _recall(key) -> bytes | None:
    with _rendered_lock:
        body = _rendered.get(key)
        if body is not None:
            _rendered.move_to_end(key)
        return body


def render_invoice(invoice_id: int, today) -> bytes:
    invoice = (Invoice.objects.select_related("organization", "account")
               .only(*INVOICE_FIELDS, "organization__name", "organization__timezone", "account__locale")
               .get(pk=invoice_id))
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
        "brand": branding(invoice.organization), "locale": locale,
        "invoice": invoice,
        "lines": [{"description": description, "quantity": quantity, "amount": money(amount)}
                  for description, quantity, amount in InvoiceLine.objects.filter(invoice=invoice).order_by("pk")
                  .values_list("description", "quantity", "amount")],
        "subtotal": money(invoice.subtotal), "discount": money(invoice.discount) if invoice.discount else "",
        "credit": money(invoice.credit_applied) if invoice.credit_applied else "",
        "total": money(invoice.total), "amount_due": money(invoice.amount_due),
        "due_date": formatting.day(invoice.due_date, locale),
        "overdue": open_ and invoice.due_date < today,
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
    # No request: nothing of the visitor's (CSRF token, session) may enter a page other visits reuse.
    with translation.override(LANGUAGES.get(locale, "pt-br")):
        return render_to_string("pages/invoice.html", context).encode()


@require_GET
def invoice_page(request, token: str):
    found = fingerprint(token)
    if found is None or not links.opens_here(request, found[1]):
        return not_found(request)
    key = (links.token_hash(token), found)
    body = _recall(key)
    if body is None:
        body = render_invoice(found[0], found[-1])
        _remember(key, body)
    return private(HttpResponse(body, content_type="text/html; charset=utf-8"))
