"""The hosted invoice page: status, lines, due date and how to pay (PIX QR code and copy-and-paste
code, boleto digitable line and PDF, and "pay now by card": see pay.py); a paid invoice shows its receipt.

The page is opened far more often than anything on it changes, so each web process keeps the pages it
rendered (`_rendered`, bounded) keyed by the link and a fingerprint of everything the page shows: one
SQL query reads the link, the invoice's fields, its organization's name, time zone and branding, the
account's language, its lines' count and its payments' count and last change, and the organization's
local day (for "overdue") and the last change of its own gateway configurations (the card form's
tokenization endpoint). Any change to what the page shows changes the fingerprint, so a page is
never stale; an unchanged page costs that one query. (Profiled: five ORM queries and the template
render were ~90 % of the request; the PIX QR code, ~50 ms to draw, was already drawn once per process.)
On PostgreSQL the query is a prepared statement of each connection: planning its joins took ~10x
longer than running them.

A page that shows the card form needs the visitor's CSRF token in it: the kept page holds `CSRF_SLOT`
there (rendered without a request), and each response fills in that visitor's token.
"""

import threading
import weakref
from collections import OrderedDict
from functools import lru_cache

import segno
from django.db import connection
from django.http import HttpResponse, HttpResponseRedirect
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import translation
from django.views.decorators.http import require_http_methods

from cobrador.core import clock
from cobrador.customers.models import BillingAccount
from cobrador.gateways.models import GatewayConfig
from cobrador.invoicing.models import Invoice, InvoiceLine
from cobrador.notifications import formatting
from cobrador.organizations.models import Organization
from cobrador.pages import links
from cobrador.pages.models import PageBranding, PageLink
from cobrador.pages.views.card_form import card_gateway
from cobrador.pages.views.common import LANGUAGES, branding, not_found, private
from cobrador.pages.views.pay import pay_by_card
from cobrador.payments.models import Payment
from cobrador.payments.services import payment_in_progress

PAID_STATUSES = ("succeeded", "refunded")
INVOICE_FIELDS = ("public_id", "organization", "account", "number", "status", "currency", "subtotal", "discount",
                  "credit_applied", "total", "amount_paid", "amount_due", "due_date", "paid_at")
PAYMENT_FIELDS = ("public_id", "method", "status", "pix_copy_paste", "boleto_line", "boleto_url", "expires_at",
                  "paid_at")
CACHED_PAGES = 512
# What {% csrf_token %} renders in a kept page, replaced by each visitor's token (tenant text is escaped,
# so no line description can spell it).
CSRF_SLOT = "cobrador-csrf-slot"
CSRF_FIELD = b'name="csrfmiddlewaretoken" value="' + CSRF_SLOT.encode() + b'"'


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
    gateway = GatewayConfig._meta.db_table  # noqa: SLF001
    return f"""
        SELECT i.id, i.organization_id, o.timezone, i.status, i.number, i.currency, i.subtotal, i.discount,
               i.credit_applied, i.total, i.amount_paid, i.amount_due, i.due_date, i.paid_at, o.name, a.locale,
               (SELECT COUNT(*) FROM {line} l WHERE l.invoice_id = i.id),
               (SELECT COUNT(*) FROM {payment} p WHERE p.invoice_id = i.id),
               (SELECT MAX(p.updated_at) FROM {payment} p WHERE p.invoice_id = i.id),
               (SELECT b.updated_at FROM {brand} b WHERE b.organization_id = i.organization_id),
               (SELECT MAX(g.updated_at) FROM {gateway} g WHERE g.organization_id = i.organization_id
                AND NOT g.is_fallback)
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


def render_invoice(invoice_id: int, today, *, error: str = "", notice: str = "") -> bytes:
    """The page's bytes, with CSRF_SLOT where a card form is. (The built-in sandbox configuration a test
    organization's card form names is made here the first time, and never changes after: the fingerprint
    leaves it out.)"""
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
    processing = open_ and payment_in_progress(invoice.pk)
    gateway = card_gateway(invoice.organization) if open_ and invoice.amount_due > 0 and not processing else None
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
        "processing": processing, "error": error, "notice": notice,
        # The form posts to the page's own address ("." under /pages/i/<token>/): no token in the kept page.
        "card": {"gateway": gateway[1], "action": "."} if gateway else None,
        "csrf_token": CSRF_SLOT,
    }
    # No request: nothing of the visitor's (CSRF token, session) may enter a page other visits reuse.
    with translation.override(LANGUAGES.get(locale, "pt-br")):
        return render_to_string("pages/invoice.html", context).encode()


def _respond(request, body: bytes, status: int = 200):
    if CSRF_FIELD in body:
        body = body.replace(CSRF_FIELD, b'name="csrfmiddlewaretoken" value="' + get_token(request).encode() + b'"', 1)
    return private(HttpResponse(body, content_type="text/html; charset=utf-8", status=status))


@require_http_methods(["GET", "POST"])
def invoice_page(request, token: str):
    found = fingerprint(token)
    if found is None or not links.opens_here(request, found[1]):
        return not_found(request)
    if request.method == "POST":  # pay now by card
        answer = pay_by_card(request, invoice_id=found[0])
        if answer.status == 303:
            return private(HttpResponseRedirect(reverse("pages:invoice", kwargs={"token": token}), status=303))
        return _respond(request, render_invoice(found[0], found[-1], error=answer.error, notice=answer.notice),
                        answer.status)
    key = (links.token_hash(token), found)
    body = _recall(key)
    if body is None:
        body = render_invoice(found[0], found[-1])
        _remember(key, body)
    return _respond(request, body)
