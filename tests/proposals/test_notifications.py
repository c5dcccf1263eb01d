"""Proposal notices: drafted by notifications/sink.py from proposal.* events, sent over a real SMTP server."""

from datetime import date

import pytest
from django.db import transaction

from cobrador.notifications import links
from cobrador.notifications.defaults import check_defaults
from cobrador.notifications.models import Notice
from cobrador.proposals import services
from cobrador.proposals.models import Proposal
from tests.notifications.conftest import drain, make_account, smtp  # noqa: F401 - the smtp fixture
from tests.proposals.factories import make_proposal
from tests.subscriptions.conftest import sweep, utc

pytestmark = pytest.mark.django_db


def _text(mail) -> str:
    return mail.message.get_body(("plain",)).get_content()


def test_the_prospect_gets_the_proposal_in_its_language_once_per_send(api, clock, smtp):  # noqa: F811
    proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    with transaction.atomic():
        services.send_proposal(proposal=Proposal.objects.select_related("organization").get(pk=proposal.pk))

    drain()

    mails = smtp.wait_for(2)
    assert [m.rcpt_tos for m in mails] == [["joana@example.com"], ["joana@example.com"]]
    assert mails[0].message["Subject"] == f"Proposta {proposal.number} de Acme"
    text = _text(mails[0])
    assert "Olá, Joana Lima" in text and "R$ 100,00" in text and "10/03/2026" in text and "Pro × 1" in text
    [notice, _] = Notice.objects.filter(type="proposal_sent").order_by("pk")
    assert notice.account_id is None and notice.locale == "pt-BR" and notice.channel == "email"


def test_an_accounts_proposal_uses_the_accounts_address_and_locale(api, clock, smtp):  # noqa: F811
    account = make_account(api.organization, name="Mary Smith", email="mary@example.com", locale="en")

    make_proposal(api.organization, expires_on=date(2026, 3, 10), account=account)
    drain()

    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["mary@example.com"] and mail.message["Subject"].startswith("Proposal 1 from Acme")
    assert Notice.objects.get(type="proposal_sent").account == account


def test_reminders_reach_the_customer_and_expiry_and_acceptance_reach_the_seller(api, clock, smtp):  # noqa: F811
    expiring = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    accepted = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    with transaction.atomic():
        services.accept_proposal(proposal=Proposal.objects.select_related("organization").get(pk=accepted.pk))
    sweep("proposal-reminder", utc(2026, 3, 9, 12))
    sweep("proposal-expiration", utc(2026, 3, 11, 3, 30))
    sweep("proposal-expiration", utc(2026, 3, 11, 4, 30))

    drain()

    by_type = {n.type: n for n in Notice.objects.all()}
    assert sorted(by_type) == ["proposal_accepted", "proposal_expired", "proposal_reminder", "proposal_sent"]
    assert Notice.objects.filter(type="proposal_sent").count() == 2
    assert by_type["proposal_reminder"].recipient == "joana@example.com"
    assert by_type["proposal_reminder"].context["days_left"] == 1
    assert by_type["proposal_expired"].recipient == "billing@acme.test"
    assert by_type["proposal_expired"].context["proposal"]["id"] == expiring.public_id
    assert by_type["proposal_accepted"].recipient == "billing@acme.test"
    subjects = sorted(m.message["Subject"] for m in smtp.wait_for(5))
    assert f"A proposta {expiring.number} de Acme vence amanhã" in subjects
    assert f"A proposta {expiring.number} para Joana Lima expirou" in subjects
    assert f"Proposta {accepted.number} aceita por Joana Lima" in subjects


def test_a_registered_link_builder_puts_the_page_link_in_the_mail(api, clock, smtp):  # noqa: F811
    previous = links._builders.get("proposal")
    links.register_link_builder("proposal", lambda refs: {ref: f"https://pages.test/p/{ref[1]}" for ref in refs})
    try:
        proposal = make_proposal(api.organization, expires_on=date(2026, 3, 10))
        drain()
    finally:
        if previous is None:
            links._builders.pop("proposal", None)
        else:
            links.register_link_builder("proposal", previous)

    [mail] = smtp.wait_for(1)
    assert f"Ver proposta: https://pages.test/p/{proposal.public_id}" in _text(mail)


def test_the_shipped_templates_are_complete():
    assert check_defaults() == []


def test_the_sellers_mails_link_to_the_proposal_in_the_console_and_the_api(api, clock, smtp, settings):  # noqa: F811
    settings.PUBLIC_URL = "https://cobrador.acme.test"
    expiring = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    accepted = make_proposal(api.organization, expires_on=date(2026, 3, 10))
    with transaction.atomic():
        services.accept_proposal(proposal=Proposal.objects.select_related("organization").get(pk=accepted.pk))
    sweep("proposal-expiration", utc(2026, 3, 11, 4, 30))

    drain()

    for proposal, kind in ((expiring, "proposal_expired"), (accepted, "proposal_accepted")):
        notice = Notice.objects.get(type=kind)
        assert notice.link == f"https://cobrador.acme.test/admin/proposals/proposal/?q={proposal.public_id}"
    texts = {m.message["Subject"]: _text(m) for m in smtp.wait_for(4)}
    expired_text = texts[f"A proposta {expiring.number} para Joana Lima expirou"]
    assert f"Abrir a proposta: https://cobrador.acme.test/admin/proposals/proposal/?q={expiring.public_id}" \
        in expired_text
    assert f"Na API: GET https://cobrador.acme.test/v1/proposals/{expiring.public_id}" in expired_text
    assert "Abrir a proposta: https://cobrador.acme.test/admin/" in texts[
        f"Proposta {accepted.number} aceita por Joana Lima"]
