"""From domain events to notices, and the channels: opt-outs per channel, mandatory types, the account's
signed webhook, template failures that park one notice and tell the organization."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.catalog.services import create_plan
from cobrador.notifications import sink
from cobrador.notifications.models import Notice
from cobrador.payments.models import Payment
from cobrador.webhooks.services import create_endpoint, disable_endpoint
from tests.notifications.conftest import drain, emit, emit_invoice_created, make_account, make_invoice, notices

PREFS = "/v1/billing_accounts/{}/notification_preferences"


def opt_out(api, account, type_name: str, channel: str):
    response = api.patch(PREFS.format(account.public_id),
                         {"preferences": [{"type": type_name, "channel": channel, "enabled": False}]})
    assert response.status_code == 200, response.content


def test_each_event_becomes_one_notice_per_channel(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    assert sorted(n.channel for n in notices()) == ["email", "in_app"]  # no webhook URL set
    [email] = notices(channel="email")
    assert email.dedupe_key == f"invoice_created:{email.context['invoice']['id']}:email"
    assert email.status == "pending" and email.recipient == "maria@example.com"
    drain()
    assert {n.status for n in notices()} == {"sent"}


def test_opt_outs_are_honoured_per_channel(api, clock, smtp, receiver):
    account = make_account(api.organization)
    secret = api.patch(PREFS.format(account.public_id), {"webhook_url": receiver.url}).json()["webhook_secret"]
    receiver.secrets.append(secret)
    opt_out(api, account, "invoice_created", "email")
    opt_out(api, account, "payment_succeeded", "in_app")

    invoice = make_invoice(account)
    emit_invoice_created(invoice)
    emit(api.organization, "payment.succeeded", {"id": "pay_1", "object": "payment", "invoice": invoice.public_id,
                                                 "account": account.public_id, "amount": 19900, "currency": "BRL",
                                                 "paid_at": clock.now().isoformat()})
    drain()

    assert sorted((n.type, n.channel) for n in notices()) == [
        ("invoice_created", "in_app"), ("invoice_created", "webhook"),
        ("payment_succeeded", "email"), ("payment_succeeded", "webhook")]
    assert [m.message["Subject"] for m in smtp.wait_for(1)] == ["Pagamento recebido: R$ 199,00"]
    assert len(receiver.wait_for(2)) == 2


def test_mandatory_types_ignore_opt_outs(api, clock, smtp):
    account = make_account(api.organization)
    opt_out(api, account, "account_suspended", "email")
    opt_out(api, account, "account_suspended", "in_app")
    emit(api.organization, "billing_account.suspended", {"id": account.public_id, "object": "billing_account",
                                                         "suspended_at": "2026-03-01T12:00:00Z"})
    assert notices() == []

    assert api.patch("/v1/organizations/settings/notifications",
                     {"mandatory_types": ["account_suspended"]}).status_code == 200
    emit(api.organization, "billing_account.suspended", {"id": account.public_id, "object": "billing_account",
                                                         "suspended_at": "2026-03-02T12:00:00Z",
                                                         "suspension_reason": "Fatura 12 em atraso"})
    drain()

    assert sorted(n.channel for n in notices(status="sent")) == ["email", "in_app"]
    [mail] = smtp.wait_for(1)
    assert mail.message["Subject"] == "Sua conta com Acme está suspensa"
    assert "Fatura 12 em atraso" in mail.message.get_body(("plain",)).get_content()
    prefs = api.get(PREFS.format(account.public_id)).json()["preferences"]
    assert next(p for p in prefs if p["type"] == "account_suspended") == {
        "type": "account_suspended", "mandatory": True, "channels": {"email": True, "in_app": True, "webhook": True}}


def test_the_account_webhook_is_signed_per_standard_webhooks(api, clock, smtp, receiver):
    account = make_account(api.organization, locale="en")
    secret = api.patch(PREFS.format(account.public_id), {"webhook_url": receiver.url}).json()["webhook_secret"]
    receiver.secrets.append(secret)
    emit_invoice_created(make_invoice(account, number=12))

    drain()

    [request] = receiver.wait_for(1)
    notice = Notice.objects.get(channel="webhook")
    assert request.verified_with == [secret]
    assert request.webhook_id == notice.public_id
    body = request.json
    assert body["type"] == "notification.invoice_created" and body["id"] == notice.public_id
    assert body["data"]["account_id"] == account.public_id
    assert body["data"]["subject"] == "Invoice 12 from Acme: R$199.00"
    assert notice.status == "sent"


def test_a_failing_account_webhook_is_retried(api, clock, smtp, receiver):
    from tests.fakes.receiver import Answer

    account = make_account(api.organization)
    api.patch(PREFS.format(account.public_id), {"webhook_url": receiver.url})
    receiver.script(Answer(status=500))
    emit_invoice_created(make_invoice(account))
    drain()
    notice = Notice.objects.get(channel="webhook")
    assert notice.status == "pending" and notice.last_error == "HTTP 500"
    clock.advance(timedelta(minutes=1))
    drain()
    notice.refresh_from_db()
    assert notice.status == "sent" and notice.attempts == 2
    assert [r.webhook_id for r in receiver.wait_for(2)] == [notice.public_id] * 2


def test_payment_failed_carries_the_retry_date_and_the_boleto_and_pix_dunning_issued(api, clock, smtp):
    account = make_account(api.organization, locale="en")
    invoice = make_invoice(account, number=31, amount=5000)
    now = clock.now()
    card_payment = dict(organization=api.organization, invoice=invoice, account=account, provider="pagarme",
                        amount=5000, created_at=now, updated_at=now)
    # The dunning attempt: the card fails, then a boleto and a PIX are issued, all in one transaction.
    with transaction.atomic():
        failed = Payment.objects.create(method="card", status="failed", idempotency_key="k1",
                                        failure_message="Insufficient funds", **card_payment)
        emit(api.organization, "payment.failed", {
            "id": failed.public_id, "object": "payment", "invoice": invoice.public_id, "account": account.public_id,
            "method": "card", "status": "failed", "amount": 5000, "currency": "BRL",
            "failure_message": "Insufficient funds", "next_retry_at": "2026-03-04T12:00:00Z"})
        Payment.objects.create(method="bank_slip", status="pending", idempotency_key="k2",
                               boleto_url="https://boletos.test/31", boleto_line="34191.79001 01043.510047",
                               expires_at=now + timedelta(days=3), **{**card_payment, "provider": "kobana"})
        Payment.objects.create(method="pix", status="pending", idempotency_key="k3",
                               pix_copy_paste="00020126pixcode", pix_qr_code_url="https://pix.test/31.png",
                               expires_at=now + timedelta(days=1), **card_payment)
        emit(api.organization, "invoice.payment_failed", {"id": invoice.public_id, "object": "invoice",
                                                          "account": account.public_id, "number": 31,
                                                          "amount_due": 5000, "currency": "BRL"})

    drain()

    assert len(notices(type="payment_failed", channel="email")) == 1  # both events: one failure, one notice
    [mail] = smtp.wait_for(1)
    text = mail.message.get_body(("plain",)).get_content()
    html = mail.message.get_body(("html",)).get_content()
    assert mail.message["Subject"] == "Payment failed for invoice 31"
    assert "The charge of R$50.00 for invoice 31 failed: Insufficient funds." in text
    assert "We will try again on March 4, 2026." in text
    assert "https://boletos.test/31" in text and "34191.79001 01043.510047" in text and "(due March 4, 2026)" in text
    assert "00020126pixcode" in text and "https://pix.test/31.png" in html


def test_renewal_prompt_links_to_the_confirm_page(api, clock, smtp):
    api.patch("/v1/organizations/settings/notifications",
              {"confirm_renewal_url": "https://app.acme.test/subscriptions/{subscription_id}/renew?a={account_id}"})
    account = make_account(api.organization, locale="en")
    with transaction.atomic():
        plan = create_plan(organization=api.organization, name="Pro annual", amount=99000)
    emit(api.organization, "subscription.renewal_prompted", {
        "id": "sub_123", "object": "subscription", "account": account.public_id, "plan": plan.public_id,
        "commitment_end": "2026-03-16T00:00:00Z", "renewal_mode": "prompt"})
    drain()

    [mail] = smtp.wait_for(1)
    link = f"https://app.acme.test/subscriptions/sub_123/renew?a={account.public_id}"
    assert mail.message["Subject"] == "Confirm the renewal of your Pro annual subscription"
    assert f"Confirm renewal: {link}" in mail.message.get_body(("plain",)).get_content()
    assert f'href="{link}"' in mail.message.get_body(("html",)).get_content()
    assert Notice.objects.get(channel="in_app").link == link


def test_subscription_renewed_and_account_reactivated(api, clock, smtp):
    account = make_account(api.organization)
    emit(api.organization, "subscription.renewed", {"id": "sub_9", "object": "subscription",
                                                     "account": account.public_id, "plan": {"name": "Básico"},
                                                     "current_period_start": "2026-03-01T00:00:00Z",
                                                     "current_period_end": "2026-04-01T00:00:00Z"})
    emit(api.organization, "billing_account.reactivated", {"id": account.public_id, "object": "billing_account"})
    drain()
    subjects = sorted(m.message["Subject"] for m in smtp.wait_for(2))
    assert subjects == ["Sua assinatura do plano Básico foi renovada", "Sua conta com Acme está ativa novamente"]


def test_a_disabled_webhook_endpoint_is_mailed_to_the_organizations_billing_contact(api, clock, smtp, receiver):
    with transaction.atomic():
        endpoint = create_endpoint(organization=api.organization, url=receiver.url, enabled_events=["*"])
        disable_endpoint(endpoint=endpoint, reason="the endpoint answered 410 Gone")
    drain()

    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["billing@acme.test"]
    assert mail.message["Subject"] == f"Endpoint de webhook desativado: {receiver.url}"
    text = mail.message.get_body(("plain",)).get_content()
    assert endpoint.public_id in text and "the endpoint answered 410 Gone" in text
    assert mail.message["List-Unsubscribe"] is None


def test_events_without_a_resolvable_account_are_skipped_and_counted(api, other_api, clock):
    theirs = make_account(other_api.organization)
    before = sink.stats["unresolved"]
    emit(api.organization, "invoice.created", {"id": "in_nope", "object": "invoice", "account": "ba_missing"})
    emit(api.organization, "payment.succeeded", {"id": "pay_x", "object": "payment", "account": theirs.public_id})
    emit(api.organization, "billing_account.suspended", {"object": "billing_account"})
    assert sink.stats["unresolved"] - before == 3
    assert notices() == []


def test_the_account_is_found_through_the_invoice_when_the_payment_names_only_that(api, clock):
    account = make_account(api.organization)
    invoice = make_invoice(account, number=5)
    emit(api.organization, "payment.succeeded", {"id": "pay_5", "invoice_id": invoice.public_id, "amount": 100})
    assert {n.account for n in notices()} == {account}
    assert notices(channel="email")[0].context["invoice"]["number"] == "5"


def test_the_same_fact_twice_is_one_notice(api, clock):
    account = make_account(api.organization)
    invoice = make_invoice(account)
    emit_invoice_created(invoice)
    emit_invoice_created(invoice)
    assert len(notices()) == 2  # e-mail and in-app, once


def test_a_template_failing_at_send_time_parks_that_notice_and_tells_the_organization(api, clock, smtp):
    response = api.put("/v1/notification_templates/invoice_created?locale=pt-BR", {
        "subject": "Fatura {{ invoice.number }}",
        "html_body": "{% if account.name == 'Boom' %}{{ 1 / 0 }}{% endif %}<p>{{ account.name }}</p>",
        "text_body": "Oi {{ account.name }}"})
    assert response.status_code == 200, response.content
    boom = make_account(api.organization, name="Boom", email="boom@example.com")
    fine = make_account(api.organization, name="Fine", email="fine@example.com")
    emit_invoice_created(make_invoice(boom, number=1))
    emit_invoice_created(make_invoice(fine, number=2))
    emit_invoice_created(make_invoice(boom, number=3))

    drain()

    parked = notices(status="parked")
    assert [(n.account, n.channel) for n in parked] == [(boom, "email"), (boom, "email")]
    assert "ZeroDivisionError" in parked[0].last_error and "line 1" in parked[0].last_error
    assert Notice.objects.get(account=fine, channel="email").status == "sent"
    assert Notice.objects.filter(account=boom, channel="in_app", status="sent").count() == 2  # text body is fine
    mails = smtp.wait_for(2)
    assert sorted(m.rcpt_tos[0] for m in mails) == ["billing@acme.test", "fine@example.com"]
    alert = next(m for m in mails if m.rcpt_tos == ["billing@acme.test"])
    assert alert.message["Subject"] == "Falha em um modelo de notificação: invoice_created (pt-BR)"
    assert "ZeroDivisionError" in alert.message.get_body(("plain",)).get_content()

    # Fixing the template sends the parked notices.
    api.put("/v1/notification_templates/invoice_created?locale=pt-BR", {
        "subject": "Fatura {{ invoice.number }}", "html_body": "<p>{{ account.name }}</p>", "text_body": "Oi"})
    drain()
    assert notices(status="parked") == []
    assert len(smtp.to("boom@example.com")) == 2


@pytest.mark.parametrize("locale", ["pt-BR", "en"])
def test_trial_will_end_events_also_warn(api, clock, smtp, locale):
    account = make_account(api.organization, locale=locale)
    emit(api.organization, "subscription.trial_will_end", {
        "id": "sub_t", "object": "subscription", "account": account.public_id, "plan": {"name": "Pro"},
        "trial_end": "2026-03-04T12:00:00Z", "payment_method": None})
    drain()
    [mail] = smtp.wait_for(1)
    text = mail.message.get_body(("plain",)).get_content()
    assert ("VOCÊ NÃO TEM UMA FORMA DE PAGAMENTO CADASTRADA" if locale == "pt-BR"
            else "YOU HAVE NO PAYMENT METHOD ON FILE") in text


def test_the_retry_date_is_the_one_dunning_scheduled(api, clock, smtp):
    from cobrador.dunning.models import DunningInvoice
    from cobrador.invoicing.services import invoice_data
    from cobrador.notifications.formatting import day

    account = make_account(api.organization, locale="en")
    invoice = make_invoice(account, number=44, amount=7000)
    # The first failed charge: dunning's own sink opens the invoice's retry schedule in this transaction.
    emit(api.organization, "invoice.payment_failed", invoice_data(invoice, lines=[]))
    dunning = DunningInvoice.objects.get(invoice=invoice)
    assert dunning.status == "scheduled" and dunning.next_attempt_at > clock.now()

    drain()

    [mail] = smtp.wait_for(1)
    text = mail.message.get_body(("plain",)).get_content()
    assert f"We will try again on {day(dunning.next_attempt_at, 'en', api.organization.timezone)}." in text


def test_a_dunning_attempt_whose_card_failed_before_its_boleto_errored_is_still_told(api, clock):
    """The card's own failure drafted no notice (the attempt went on): the attempt's event must."""
    account = make_account(api.organization)
    invoice = make_invoice(account, number=46, amount=7000)
    records = [{"object": "recovery_record", "method": "card", "outcome": "failed"},
               {"object": "recovery_record", "method": "bank_slip", "outcome": "error"}]
    attempt = {"object": "dunning_attempt", "invoice": invoice.public_id, "account": account.public_id,
               "attempt_number": 1, "method": "bank_slip", "outcome": "error", "document": None,
               "next_retry_at": "2026-03-05T12:00:00Z", "records": records}
    emit(api.organization, "dunning.retry_attempted", attempt)
    other = make_invoice(account, number=47, amount=7000)  # an attempt that failed nothing: no news
    emit(api.organization, "dunning.retry_attempted", {**attempt, "invoice": other.public_id, "records": records[1:]})

    [notice] = notices(type="payment_failed", channel="email")
    assert notice.context["invoice"]["id"] == invoice.public_id


def test_a_dunning_attempt_that_issued_a_boleto_tells_the_customer_how_to_pay(api, clock, smtp):
    account = make_account(api.organization)
    invoice = make_invoice(account, number=45, amount=7000)
    attempt = {"object": "dunning_attempt", "invoice": invoice.public_id, "account": account.public_id,
               "attempt_number": 2, "method": "bank_slip", "outcome": "issued",
               "next_retry_at": "2026-03-05T12:00:00Z",
               "document": {"payment": "pay_doc", "method": "bank_slip", "amount": 7000, "currency": "BRL",
                            "boleto_url": "https://boletos.test/45", "boleto_line": "34191.00045",
                            "expires_at": "2026-03-04T12:00:00Z"}}
    emit(api.organization, "dunning.retry_attempted", attempt)
    emit(api.organization, "dunning.retry_attempted", {**attempt, "attempt_number": 3, "outcome": "succeeded"})

    drain()

    [mail] = smtp.wait_for(1)
    text = mail.message.get_body(("plain",)).get_content()
    assert mail.message["Subject"] == "Falha no pagamento da fatura 45"
    assert "Tentaremos novamente em 05/03/2026." in text
    assert "https://boletos.test/45" in text and "34191.00045" in text and "(vencimento 04/03/2026)" in text
    assert len(notices(type="payment_failed", channel="email")) == 1
