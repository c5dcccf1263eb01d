"""Invoices with their PIX / boleto documents for the hosted invoice page (rows made with the ORM, as the
notification tests make theirs)."""

import re
from datetime import timedelta

from django.db import transaction
from django.test import Client

from cobrador.core import clock
from cobrador.invoicing.models import InvoiceLine
from cobrador.pages import links
from cobrador.payments.models import Payment
from tests.notifications.conftest import make_invoice

PIX_CODE = ("00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865406199.00"
            "5802BR5913Acme Software6009SAO PAULO62070503***6304A1B2")
BOLETO_LINE = "23793.38128 60000.000003 00000.000400 1 84340000019900"
SANDBOX_TOKENS = "/sandbox/core/v5/tokens"
# The sandbox's test numbers: 4000000000000010 is stored as tok_sandbox_success, 4000000000000002 as
# tok_sandbox_decline (gateways/sandbox.py TEST_CARD_NUMBERS).
GOOD_CARD = {"holder_name": "MARIA SOUZA", "number": "4000000000000010", "exp_month": 12, "exp_year": 2030,
             "cvv": "123"}
DECLINING_NUMBER = "4000000000000002"


def invoice_with_documents(account, *, number=1, amount=19900):
    invoice = make_invoice(account, number=number, amount=amount)
    InvoiceLine.objects.create(invoice=invoice, description="Pro × 1", quantity=1, unit_amount=amount, amount=amount)
    now = clock.now()
    common = {"organization": account.organization, "invoice": invoice, "account": account, "provider": "sandbox",
              "amount": amount, "status": "pending", "expires_at": now + timedelta(days=3), "created_at": now,
              "updated_at": now}
    Payment.objects.create(method="pix", pix_copy_paste=PIX_CODE, idempotency_key=f"pix-{invoice.pk}", **common)
    Payment.objects.create(method="bank_slip", boleto_line=BOLETO_LINE, boleto_url="https://boletos.test/1.pdf",
                           idempotency_key=f"boleto-{invoice.pk}", **common)
    return invoice


def page_link(organization, kind: str, object_id: str) -> str:
    """The page's path (no host), from a freshly minted link."""
    with transaction.atomic():
        _, url = links.create_link(organization=organization, kind=kind, object_id=object_id)
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def card_form(html: str) -> tuple[str, str]:
    """The card form's tokenization endpoint and public key, as its script reads them."""
    url = re.search(r'data-tokenize-url="([^"]+)"', html).group(1)
    key = re.search(r'data-public-key="([^"]+)"', html).group(1)
    return url, key


def sandbox_token(client: Client, public_key: str, **card) -> dict:
    """What the page's script gets from the sandbox's tokens endpoint for GOOD_CARD (changed by `card`)."""
    response = client.post(f"{SANDBOX_TOKENS}?appId={public_key}", {"type": "card", "card": {**GOOD_CARD, **card}},
                           content_type="application/json")
    return {"status": response.status_code, **response.json()}
