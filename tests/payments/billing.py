"""Building blocks for payments and callbacks tests: accounts, payment methods and open invoices made
with the real services (invoices directly as rows: generating them is the invoicing tests' business)."""

from datetime import timedelta

from django.db import transaction

from cobrador.core import clock
from cobrador.customers.services import attach_payment_method, create_billing_account
from cobrador.events.models import Event
from cobrador.invoicing.models import Invoice, InvoiceLine, InvoiceNumberSequence


def make_account(organization, name="Maria Souza", document="529.982.247-25"):
    with transaction.atomic():
        return create_billing_account(
            organization=organization, name=name, email="maria@example.test", document=document,
            address={"street": "Rua das Laranjeiras", "number": "1287", "neighborhood": "Vila Mariana",
                     "city": "São Paulo", "state": "SP", "zipcode": "04015020", "country": "BR"})


def add_card(account, token="tok_sandbox_success", default=True):
    with transaction.atomic():
        return attach_payment_method(account=account, type="card", brand="visa", last4="4242", exp_month=12,
                                     exp_year=clock.now().year + 3, gateway_token=token, set_default=default)


def add_method(account, type, default=True):  # noqa: A002
    with transaction.atomic():
        return attach_payment_method(account=account, type=type, set_default=default)


def make_invoice(account, amount=10000, due_in_days=7, status="open"):
    now = clock.now()
    with transaction.atomic():
        sequence, _ = InvoiceNumberSequence.objects.select_for_update().get_or_create(
            organization_id=account.organization_id)
        sequence.last_number += 1
        sequence.save()
        invoice = Invoice.objects.create(
            organization_id=account.organization_id, account=account, number=sequence.last_number, status=status,
            subtotal=amount, total=amount, amount_due=amount, due_date=(now + timedelta(days=due_in_days)).date(),
            created_at=now)
        InvoiceLine.objects.create(invoice=invoice, description="Plano Pro", unit_amount=amount, amount=amount)
    return invoice


def event_types(organization, prefix=""):
    return list(Event.objects.filter(organization=organization, type__startswith=prefix).order_by("pk")
                .values_list("type", flat=True))
