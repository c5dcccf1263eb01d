"""What people hear of NFS-e: the customer's e-mail (a notification type with pt-BR and en templates,
opt-out as for the others), the organization's failure e-mail, and the nfe.* webhooks."""

import pytest
from standardwebhooks import Webhook

from cobrador.notifications import registry
from cobrador.notifications.models import Notice, NotificationOptOut
from cobrador.payments.charging import charge_invoice
from cobrador.webhooks.services import create_endpoint
from tests.nfe.conftest import make_account, note_of, sync
from tests.nfe.test_issuing import later
from tests.notifications.conftest import drain, smtp  # noqa: F401
from tests.payments.billing import add_card, make_invoice


def issue_one(fiscal, nfeio, *, locale="pt-BR"):
    org = fiscal.organization
    account = make_account(org, locale=locale)
    add_card(account)
    invoice = make_invoice(account, amount=4990)
    charge_invoice(organization=org, invoice=invoice)
    sync()
    later()
    sync()
    return account, note_of(invoice)


@pytest.mark.parametrize("locale, subject, amount", [
    ("pt-BR", "Nota fiscal de serviço (NFS-e) {number} de Fiscal", "R$ 49,90"),
    ("en", "Service invoice (NFS-e) {number} from Fiscal", "R$49.90"),
])
def test_the_customer_gets_the_nfse_by_email_in_their_locale(fiscal, nfeio, smtp, locale, subject, amount):  # noqa: F811
    account, note = issue_one(fiscal, nfeio, locale=locale)
    assert note.status == "issued"
    drain()
    mails = smtp.wait_for(2)  # the payment's receipt and the NFS-e
    [mail] = [m for m in mails if "NFS-e" in m.message["Subject"]]
    assert mail.rcpt_tos == ["maria@example.test"]
    assert mail.message["Subject"] == subject.format(number=note.number)
    text = mail.message.get_body(("plain",)).get_content()
    assert amount in text and note.check_code in text and note.pdf_url in text


def test_an_opted_out_customer_gets_no_nfse_email(fiscal, nfeio, smtp):  # noqa: F811
    org = fiscal.organization
    account = make_account(org)
    NotificationOptOut.objects.create(organization=org, account=account, type="nfe_issued", channel="email",
                                      created_at=later.__globals__["clock_module"].now())
    add_card(account)
    invoice = make_invoice(account)
    charge_invoice(organization=org, invoice=invoice)
    sync()
    later()
    sync()
    drain()
    assert not Notice.objects.filter(type="nfe_issued", channel="email", status="sent").exists()
    assert Notice.objects.filter(type="nfe_issued", channel="in_app").exists()  # only the e-mail was opted out of


def test_the_organization_is_told_when_a_note_fails(fiscal, nfeio, smtp):  # noqa: F811
    nfeio.reject_service_codes["2690"] = "Serviço não permitido"
    _, note = issue_one(fiscal, nfeio)
    assert note.status == "failed"
    drain()
    [mail] = [m for m in smtp.wait_for(2) if "NFS-e" in m.message["Subject"]]
    assert mail.rcpt_tos == [fiscal.organization.billing_email]
    text = mail.message.get_body(("plain",)).get_content()
    assert "Serviço não permitido" in text and f"/v1/service_invoices/{note.public_id}/retry" in text


def test_the_types_are_registered_with_templates():
    assert registry.TYPES["nfe_issued"].audience == registry.ACCOUNT
    assert registry.TYPES["nfe_failed"].audience == registry.ORGANIZATION


def test_nfe_events_reach_webhook_endpoints_with_the_full_object(fiscal, nfeio, receiver):
    from django.db import transaction

    from cobrador.webhooks.delivery import deliver_due

    with transaction.atomic():
        endpoint = create_endpoint(organization=fiscal.organization, url=receiver.url,
                                   enabled_events=["nfe.issued"])
    secret = endpoint.secret
    _, note = issue_one(fiscal, nfeio)
    deliver_due()
    [delivery] = receiver.wait_for(1)
    payload = Webhook(secret).verify(delivery.body, delivery.headers)
    assert payload["type"] == "nfe.issued"
    assert payload["data"]["id"] == note.public_id and payload["data"]["number"] == note.number
    assert payload["data"]["verification_code"] == note.check_code
