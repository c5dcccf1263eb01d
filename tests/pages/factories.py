"""Invoices with their PIX / boleto documents for the hosted invoice page (rows made with the ORM, as the
notification tests make theirs)."""

from datetime import timedelta

from django.db import transaction

from cobrador.core import clock
from cobrador.invoicing.models import InvoiceLine
from cobrador.pages import links
from cobrador.payments.models import Payment
from tests.notifications.conftest import make_invoice

PIX_CODE = ("00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865406199.00"
            "5802BR5913Acme Software6009SAO PAULO62070503***6304A1B2")
BOLETO_LINE = "23793.38128 60000.000003 00000.000400 1 84340000019900"


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
