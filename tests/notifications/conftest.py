from datetime import date, timedelta

import pytest
from django.db import transaction

from cobrador.core import clock as clock_module
from cobrador.customers.models import PaymentMethod
from cobrador.customers.services import attach_payment_method, create_billing_account
from cobrador.events.services import record_event
from cobrador.invoicing.models import Invoice
from cobrador.invoicing.services import invoice_data
from cobrador.notifications.delivery import deliver_due
from cobrador.notifications.models import Notice
from tests.fakes.smtp import SmtpServer


def smtp_mailers(server: SmtpServer, timeout: float = 5.0) -> dict:
    return {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                        "OPTIONS": {"host": server.host, "port": server.port, "timeout": timeout}}}


@pytest.fixture
def smtp(settings):
    """A real SMTP server on loopback; the default mailer points at it."""
    server = SmtpServer().start()
    settings.MAILERS = smtp_mailers(server)
    settings.DEFAULT_FROM_EMAIL = "billing@cobrador.test"
    settings.PUBLIC_URL = "https://cobrador.test"
    yield server
    server.stop()


def make_account(organization, *, name="Maria Souza", email="maria@example.com", locale="pt-BR"):
    with transaction.atomic():
        return create_billing_account(organization=organization, name=name, email=email, locale=locale)


def make_card(account, *, exp_month: int, exp_year: int, token: str = "tok_1", default: bool = True) -> PaymentMethod:
    with transaction.atomic():
        return attach_payment_method(account=account, type="card", brand="visa", last4=token[-4:].rjust(4, "0"),
                                     exp_month=exp_month, exp_year=exp_year, gateway_token=token,
                                     set_default=default)


def make_invoice(account, *, number: int = 1, amount: int = 19900, due_date: date | None = None,
                 status: str = "open") -> Invoice:
    now = clock_module.now()
    return Invoice.objects.create(
        organization=account.organization, account=account, number=number, status=status, subtotal=amount,
        total=amount, amount_due=amount if status == "open" else 0,
        due_date=due_date or (now.date() + timedelta(days=7)),
        created_at=now)


def emit(organization, type_: str, data: dict):
    with transaction.atomic():
        return record_event(organization=organization, type=type_, data=data)


def emit_invoice_created(invoice: Invoice):
    return emit(invoice.organization, "invoice.created", invoice_data(invoice, lines=[]))


def drain() -> int:
    return deliver_due()


def notices(**filters) -> list[Notice]:
    return list(Notice.objects.filter(**filters).order_by("pk"))
