"""E-mail notices against a real SMTP server on loopback: the message, its headers, batching, retries."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client

from cobrador.notifications.delivery import deliver_batch
from cobrador.notifications.models import Notice, NotificationOptOut
from tests.notifications.conftest import drain, emit_invoice_created, make_account, make_invoice, notices, smtp_mailers


def _parts(mail):
    message = mail.message
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return message, text, html


@pytest.mark.parametrize("locale,subject,amount,due", [
    ("pt-BR", "Fatura 7 de Acme: R$ 1.234,56", "R$ 1.234,56", "08/03/2026"),
    ("en", "Invoice 7 from Acme: R$1,234.56", "R$1,234.56", "March 8, 2026"),
])
def test_invoice_created_is_a_multipart_mail_in_the_account_locale(api, clock, smtp, locale, subject, amount, due):
    account = make_account(api.organization, name="Ana <b>Lima</b>", email="ana@example.com", locale=locale)
    invoice = make_invoice(account, number=7, amount=123456)
    emit_invoice_created(invoice)

    drain()

    [mail] = smtp.wait_for(1)
    message, text, html = _parts(mail)
    assert mail.rcpt_tos == ["ana@example.com"]
    assert message["Subject"] == subject
    assert message["From"].addresses[0].display_name == "Acme"
    assert message["From"].addresses[0].addr_spec == "billing@cobrador.test"
    assert message["Reply-To"] == "billing@acme.test"
    assert amount in text and due in text and "Ana <b>Lima</b>" in text
    assert amount in html and due in html
    assert "Ana &lt;b&gt;Lima&lt;/b&gt;" in html and "<b>Lima</b>" not in html
    notice = Notice.objects.get(channel="email")
    assert message["Message-ID"] == f"<{notice.public_id}@cobrador.test>"
    assert notice.status == "sent" and notice.sent_at == clock.now()


def test_every_customer_mail_carries_a_signed_one_click_unsubscribe(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    drain()

    [mail] = smtp.wait_for(1)
    message, text, html = _parts(mail)
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = message["List-Unsubscribe"].strip().strip("<>")  # a long value is folded onto its own line
    assert url.startswith("https://cobrador.test/v1/notifications/unsubscribe?token=")
    assert url in text and url.replace("&", "&amp;") in html
    path = urlsplit(url)

    # A link scanner's GET changes nothing; the one-click POST (RFC 8058) opts the account out of this type by e-mail.
    assert Client().get(f"{path.path}?{path.query}").status_code == 200
    assert not NotificationOptOut.objects.exists()
    # A mail program posts without cookies or a CSRF token.
    response = Client(enforce_csrf_checks=True).post(f"{path.path}?{path.query}", data="List-Unsubscribe=One-Click",
                                                     content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    [opt_out] = NotificationOptOut.objects.all()
    assert (opt_out.account, opt_out.type, opt_out.channel, opt_out.source) == \
        (account, "invoice_created", "email", "unsubscribe_link")

    emit_invoice_created(make_invoice(account, number=2))
    drain()
    assert len(smtp.messages) == 1
    assert Notice.objects.filter(type="invoice_created", channel="in_app").count() == 2


def test_a_tampered_unsubscribe_token_changes_nothing(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    drain()
    url = smtp.wait_for(1)[0].message["List-Unsubscribe"].strip().strip("<>")
    path = urlsplit(url)
    forged = path.query.replace("invoice_created", "card_expiring")[:-2] + "xx"
    response = Client().post(f"{path.path}?{forged}", data="List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 404
    assert not NotificationOptOut.objects.exists()


def test_a_batch_goes_over_one_smtp_connection(api, clock, smtp):
    account = make_account(api.organization)
    for number in range(1, 6):
        emit_invoice_created(make_invoice(account, number=number))

    assert deliver_batch() == 10  # 5 e-mails and 5 in-app notices, one batch

    assert len(smtp.wait_for(5)) == 5
    assert smtp.connections == 1
    assert len({m.message_id for m in smtp.messages}) == 5


def test_smtp_4xx_is_retried_with_backoff_and_the_same_message_id(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    smtp.reply_next_data("451 4.3.0 Mailbox busy, try again later")

    drain()

    [notice] = notices(channel="email")
    assert notice.status == "pending" and notice.attempts == 1
    assert "SMTP 451" in notice.last_error
    assert timedelta(seconds=50) < notice.next_attempt_at - clock.now() < timedelta(seconds=70)
    assert smtp.messages == []
    assert drain() == 0  # not due yet

    clock.advance(timedelta(minutes=2))
    drain()

    notice.refresh_from_db()
    assert (notice.status, notice.attempts, notice.last_error) == ("sent", 2, "")
    [mail] = smtp.wait_for(1)
    assert mail.message_id == f"<{notice.public_id}@cobrador.test>"


def test_smtp_5xx_fails_the_notice_for_good_and_the_rest_of_the_batch_goes_out(api, clock, smtp):
    bounced = make_account(api.organization, name="Gone", email="gone@example.com")
    fine = make_account(api.organization, name="Fine", email="fine@example.com")
    emit_invoice_created(make_invoice(bounced, number=1))
    emit_invoice_created(make_invoice(fine, number=2))
    smtp.refuse("gone@example.com", "550 5.1.1 No such user here")

    drain()

    failed = Notice.objects.get(channel="email", account=bounced)
    assert failed.status == "failed" and failed.next_attempt_at is None
    assert "SMTP 550" in failed.last_error and "No such user" in failed.last_error
    assert Notice.objects.get(channel="email", account=fine).status == "sent"
    assert [m.rcpt_tos for m in smtp.wait_for(1)] == [["fine@example.com"]]
    clock.advance(timedelta(days=3))
    assert drain() == 0


def test_a_timeout_is_retried_and_the_connection_reopened_for_the_rest(api, clock, smtp, settings):
    settings.MAILERS = smtp_mailers(smtp, timeout=0.5)
    slow = make_account(api.organization, name="Slow", email="slow@example.com")
    fine = make_account(api.organization, name="Fine", email="fine@example.com")
    emit_invoice_created(make_invoice(slow, number=1))
    emit_invoice_created(make_invoice(fine, number=2))
    smtp.stall_next_data()

    drain()

    slow_notice = Notice.objects.get(channel="email", account=slow)
    assert slow_notice.status == "pending" and "timed out" in slow_notice.last_error.lower()
    assert Notice.objects.get(channel="email", account=fine).status == "sent"
    assert smtp.connections == 2
    smtp.release()

    clock.advance(timedelta(minutes=2))
    drain()
    slow_notice.refresh_from_db()
    assert slow_notice.status == "sent"
    assert sorted(m.rcpt_tos[0] for m in smtp.messages) == ["fine@example.com", "slow@example.com"]


def test_a_421_closing_the_connection_fails_only_that_mail_and_the_rest_go_over_a_new_one(api, clock, smtp):
    first = make_account(api.organization, name="First", email="first@example.com")
    second = make_account(api.organization, name="Second", email="second@example.com")
    emit_invoice_created(make_invoice(first, number=1))
    emit_invoice_created(make_invoice(second, number=2))
    smtp.reply_next_data("421 4.7.0 Too many messages, closing connection")

    drain()

    failed = Notice.objects.get(channel="email", account=first)
    assert failed.status == "pending" and "SMTP 421" in failed.last_error
    assert Notice.objects.get(channel="email", account=second).status == "sent"
    assert [m.rcpt_tos for m in smtp.wait_for(1)] == [["second@example.com"]]
    assert smtp.connections == 2


def test_an_unreachable_mail_server_leaves_everything_to_retry(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    smtp.stop()

    drain()

    [notice] = notices(channel="email")
    assert notice.status == "pending" and "cannot connect to the mail server" in notice.last_error
    assert Notice.objects.get(channel="in_app").status == "sent"


def test_retries_stop_after_the_schedule(api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    [notice] = notices(channel="email")
    for _ in range(8):
        smtp.reply_next_data("421 4.7.0 Try again later")
        drain()
        clock.advance(timedelta(days=2))
    notice.refresh_from_db()
    assert notice.status == "failed" and notice.attempts == 8
    assert smtp.messages == []


def test_without_smtp_mails_are_eml_files_in_the_data_dir(api, clock, settings, tmp_path):
    settings.MAILERS = {"default": {"BACKEND": "cobrador.notifications.mail_backends.EmlFileBackend",
                                    "OPTIONS": {"file_path": str(tmp_path / "mails")}}}
    account = make_account(api.organization, email="files@example.com", locale="en")
    emit_invoice_created(make_invoice(account, number=3))
    emit_invoice_created(make_invoice(account, number=4))

    drain()

    files = sorted((tmp_path / "mails").glob("*.eml"))
    assert len(files) == 2
    import email
    import email.policy

    message = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert message["To"] == "files@example.com"
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    assert {Notice.objects.get(channel="email", context__invoice__number=n).status for n in ("3", "4")} == {"sent"}


def test_the_file_backend_is_the_default_without_an_email_url(tmp_path):
    from cobrador.notifications.email_config import describe, mailer_from_url, mailers_setting

    mailers = mailers_setting("", tmp_path / "mails")
    assert describe(mailers) == (f"written as .eml files to {tmp_path / 'mails'} "
                                 "(set COBRADOR_EMAIL_URL to send by SMTP)")
    smtp = mailer_from_url("smtp://user%40x:p%3Ass@mail.example.com:2525?tls=1&timeout=3")
    assert smtp["OPTIONS"] == {"host": "mail.example.com", "port": 2525, "username": "user@x", "password": "p:ss",
                               "use_tls": True, "use_ssl": False, "timeout": 3.0}
    assert mailer_from_url("smtps://mail.example.com")["OPTIONS"]["port"] == 465
    assert describe({"default": smtp}) == "SMTP mail.example.com:2525"


def test_the_mime_message_is_clean_crlf_with_encoded_words_and_long_lines_in_base64():
    import email
    import email.policy
    import re

    from cobrador.notifications.messages import NoticeEmail, address

    subject = "Sua assinatura do plano Profissional Avançado foi renovada — obrigado pela confiança, José"
    mail = NoticeEmail(subject=subject, body="olá\n" + "x" * 1200, to=["maria@exämple.com"],
                       from_email=address("Ação & Cia — Brasil", "billing@cobrador.test"),
                       headers={"Message-ID": "<ntf_1@cobrador.test>"})
    mail.attach_alternative("<p>olá</p>", "text/html")
    data = mail.message(policy=email.policy.SMTP).as_bytes()

    assert not re.search(rb"(?<!\r)\n", data)  # SMTP line ends only
    assert data.split(b"\r\n\r\n", 1)[0].isascii()  # headers: encoded words; bodies: 8bit or base64
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed["Subject"] == subject
    assert parsed["From"].addresses[0].display_name == "Ação & Cia — Brasil"
    assert parsed["To"] == "maria@xn--exmple-cua.com"
    plain = parsed.get_body(("plain",))
    assert plain["Content-Transfer-Encoding"] == "base64"
    assert plain.get_content() == "olá\r\n" + "x" * 1200  # canonical CRLF line breaks inside base64
    html = parsed.get_body(("html",))
    assert html["Content-Transfer-Encoding"] == "8bit" and html.get_content() == "<p>olá</p>"
    with pytest.raises(ValueError):
        NoticeEmail(subject="a\r\nBcc: x@evil.test", body="x", to=["a@b.test"], from_email="c@d.test").message()
    with pytest.raises(ValueError):
        address("", "jos\u00e9@example.com")


def test_unsubscribing_from_a_mandatory_type_says_so_and_stores_nothing(api, clock, smtp):
    api.patch("/v1/organizations/settings/notifications", {"mandatory_types": ["invoice_created"]})
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    drain()
    url = urlsplit(smtp.wait_for(1)[0].message["List-Unsubscribe"].strip().strip("<>"))
    response = Client().post(f"{url.path}?{url.query}", data="List-Unsubscribe=One-Click",
                             content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200 and b"cannot be turned off" in response.content
    assert not NotificationOptOut.objects.exists()


def test_the_openapi_document_describes_the_notification_api(api):
    paths = Client().get("/v1/openapi.json").json()["paths"]
    for path in ("/v1/organizations/settings/notifications", "/v1/notification_templates/{notification_type}",
                 "/v1/notification_templates/{notification_type}/preview",
                 "/v1/notification_templates/{notification_type}/test",
                 "/v1/billing_accounts/{account_id}/notifications",
                 "/v1/billing_accounts/{account_id}/notification_preferences"):
        assert path in paths, path
    assert "/v1/notifications/unsubscribe" not in paths
