import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.template.loader import render_to_string
from django.test import Client
from django.utils import translation

import cobrador.pages
from cobrador.customers.models import BillingAccount
from cobrador.events.models import Event
from cobrador.notifications.models import Notice
from cobrador.pages.views.invoice import pix_qr_data_uri
from cobrador.proposals.models import Proposal, ProposalView
from cobrador.subscriptions.models import Subscription
from tests.notifications.conftest import emit_invoice_created, make_account
from tests.pages.factories import BOLETO_LINE, PIX_CODE, invoice_with_documents, page_link
from tests.proposals.factories import make_proposal
from tests.subscriptions.conftest import make_plan, utc

pytestmark = pytest.mark.django_db


def _path(url: str) -> str:
    return "/" + url.split("://", 1)[1].split("/", 1)[1]


def _sent_proposal_path(api, **kwargs):
    """Create and send a proposal through the API and return the page link its e-mail carries."""
    plan = make_plan(api.organization, amount=15000)
    body = {"prospect": {"name": "Joana Lima", "email": "joana@example.com", "locale": kwargs.pop("locale", "pt-BR")},
            "lines": [{"plan": plan.public_id, "quantity": 2}], "expires_on": "2026-03-10", **kwargs}
    proposal = api.post("/v1/proposals", body).json()
    api.post(f"/v1/proposals/{proposal['id']}/send")
    notice = Notice.objects.get(type="proposal_sent")
    assert notice.link.startswith("http") and "/pages/p/" in notice.link
    return proposal, _path(notice.link)


def test_the_e_mailed_link_opens_the_proposal_page_and_every_view_is_recorded(api, clock):
    proposal, path = _sent_proposal_path(api, message="Oferta para a Joana")
    client = Client()

    first = client.get(path, headers={"User-Agent": "phone"})
    clock.advance(timedelta(hours=1))
    client.get(path)

    assert first.status_code == 200
    html = first.content.decode()
    assert "Proposta 1" in html and "Joana Lima" in html and "Oferta para a Joana" in html
    assert "R$ 300,00" in html and "10/03/2026" in html and "Aceitar proposta" in html
    assert first["Cache-Control"] == "no-store" and first["Referrer-Policy"] == "same-origin"
    row = Proposal.objects.get(public_id=proposal["id"])
    assert row.status == "viewed" and row.view_count == 2
    assert row.first_viewed_at == utc(2026, 3, 1, 12) and row.last_viewed_at == utc(2026, 3, 1, 13)
    assert ProposalView.objects.filter(proposal=row, kind="view").count() == 2
    assert Event.objects.filter(type="proposal.viewed").count() == 1


def test_accepting_on_the_page_creates_the_account_and_shows_the_subscription(api, clock):
    proposal, path = _sent_proposal_path(api, locale="en")
    client = Client(enforce_csrf_checks=True)
    page = client.get(path)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode()).group(1)

    answer = client.post(path + "accept", {"csrfmiddlewaretoken": token})
    shown = client.get(answer["Location"])

    assert answer.status_code == 302
    subscription = Subscription.objects.get()
    assert subscription.account == BillingAccount.objects.get(email="joana@example.com")
    html = shown.content.decode()
    assert "Proposal accepted" in html and subscription.public_id in html
    assert ProposalView.objects.filter(kind="accept").count() == 1
    assert Proposal.objects.get(public_id=proposal["id"]).status == "accepted"


def test_a_post_without_the_csrf_token_is_refused(api, clock):
    _, path = _sent_proposal_path(api)
    assert Client(enforce_csrf_checks=True).post(path + "accept").status_code == 403
    assert not Subscription.objects.exists()


def test_an_expired_proposal_says_so_and_refuses_acceptance_with_a_409(api, clock):
    proposal, path = _sent_proposal_path(api)
    clock.set(utc(2026, 3, 11, 3, 0))  # 00:00 on the 11th in Sao Paulo

    page = Client().get(path)
    refused = Client().post(path + "accept")

    assert "Esta proposta expirou: era válida até 10/03/2026." in page.content.decode()
    assert "Aceitar proposta" not in page.content.decode()
    assert refused.status_code == 409 and "Esta proposta expirou" in refused.content.decode()
    assert not Subscription.objects.exists()
    assert ProposalView.objects.filter(kind="accept").count() == 1  # the click is recorded all the same


def test_declining_on_the_page(api, clock):
    proposal, path = _sent_proposal_path(api)
    Client().post(path + "decline", {"reason": "caro demais"})
    row = Proposal.objects.get(public_id=proposal["id"])
    assert (row.status, row.decline_reason) == ("declined", "caro demais")
    assert "Você recusou esta proposta." in Client().get(path).content.decode()


def test_wrong_revoked_and_draft_links_are_the_same_404(api, clock):
    proposal, path = _sent_proposal_path(api)
    draft = make_proposal(api.organization, expires_on=date(2026, 3, 10), send=False)
    draft_path = page_link(api.organization, "proposal", draft.public_id)
    wrong = Client().get("/pages/p/" + "A" * 32 + "/")
    link = api.post("/v1/page_links", {"object": proposal["id"]}).json()
    assert Client().get(_path(link["url"])).status_code == 200

    revoked = api.post(f"/v1/page_links/{link['id']}/revoke")
    after = Client().get(_path(link["url"]))

    assert revoked.status_code == 200 and revoked.json()["revoked_at"] and revoked.json()["url"] is None
    for response in (wrong, after, Client().get(draft_path), Client().post("/pages/p/nope/accept")):
        assert response.status_code == 404
        assert response.content == wrong.content
    assert b"Acme" not in wrong.content and proposal["id"].encode() not in wrong.content
    assert Client().get(path).status_code == 200  # the e-mail's own link still works


def test_page_links_are_scoped_to_the_organization(api, other_api, clock):
    proposal, _ = _sent_proposal_path(api)
    assert other_api.post("/v1/page_links", {"object": proposal["id"]}).json()["error"]["field"] == "object"
    link = api.post("/v1/page_links", {"object": proposal["id"]}).json()
    assert other_api.post(f"/v1/page_links/{link['id']}/revoke").status_code == 404


def test_the_invoice_page_shows_lines_due_date_pix_qr_code_and_boleto(api, clock):
    account = make_account(api.organization, locale="pt-BR")
    invoice = invoice_with_documents(account, number=42)

    page = Client().get(page_link(api.organization, "invoice", invoice.public_id))

    assert page.status_code == 200
    html = page.content.decode()
    assert "Fatura 42" in html and "Em aberto" in html and "Pro × 1" in html and "R$ 199,00" in html
    assert "Vence em 08/03/2026" in html
    assert PIX_CODE in html and pix_qr_data_uri(PIX_CODE) in html.replace("&amp;", "&").replace("&#x27;", "'")
    assert BOLETO_LINE in html and "https://boletos.test/1.pdf" in html


def test_a_paid_invoice_shows_its_receipt_and_no_way_to_pay(api, clock):
    account = make_account(api.organization, locale="en")
    invoice = invoice_with_documents(account, number=43)
    invoice.payments.filter(method="pix").update(status="succeeded", paid_at=clock.now(), amount_paid=19900)
    invoice.status, invoice.paid_at, invoice.amount_paid, invoice.amount_due = "paid", clock.now(), 19900, 0
    invoice.save(update_fields=["status", "paid_at", "amount_paid", "amount_due"])

    html = Client().get(page_link(api.organization, "invoice", invoice.public_id)).content.decode()

    assert "Invoice 43" in html and "Receipt" in html and "R$199.00 paid on March 1, 2026." in html
    assert PIX_CODE not in html and BOLETO_LINE not in html


def test_the_invoice_e_mail_links_to_the_invoice_page(api, clock):
    account = make_account(api.organization)
    invoice = invoice_with_documents(account, number=44)
    emit_invoice_created(invoice)

    notice = Notice.objects.get(type="invoice_created", channel="email")
    assert "/pages/i/" in notice.link
    assert "Fatura 44" in Client().get(_path(notice.link)).content.decode()


def test_pages_wear_the_organizations_branding(api, clock):
    changed = api.patch("/v1/organizations/settings/pages", {"logo_url": "https://cdn.acme.test/logo.png",
                                                             "color": "#AA3300"})
    assert changed.status_code == 200 and changed.json()["color"] == "#aa3300"
    assert api.patch("/v1/organizations/settings/pages", {"color": "red; }"}).status_code == 422
    assert api.patch("/v1/organizations/settings/pages", {"logo_url": "javascript:alert(1)"}).status_code == 422
    _, path = _sent_proposal_path(api)

    html = Client().get(path).content.decode()

    assert "--brand: #aa3300;" in html and 'src="https://cdn.acme.test/logo.png"' in html and "Acme" in html


BASE = {"brand": {"name": "Acme", "logo_url": "", "color": "#2563eb"}, "locale": "pt-BR"}


@pytest.mark.parametrize("language", ["pt-br", "en"])
@pytest.mark.parametrize(("template", "context"), [
    ("pages/base.html", {}),
    ("pages/not_found.html", {}),
    ("pages/proposal.html", {
        "proposal": {"number": 1, "message": "Olá", "subscriptions": []}, "state": "viewed", "token": "t",
        "lines": [{"plan_name": "Pro", "interval": "month", "interval_count": 1, "trial_days": 7,
                   "commitment_months": 12, "discount_text": "R$ 1,00", "quantity": 1, "amount_text": "R$ 10,00"}],
        "customer_name": "Joana", "discount": "R$ 1,00", "total": "R$ 9,00", "expires_on": "10/03/2026",
        "error": "proposal_closed", "subscriptions": []}),
    ("pages/proposal.html", {"proposal": {"number": 1}, "state": "accepted", "token": "t", "lines": [],
                             "subscriptions": [{"id": "sub_1", "plan_name": "Pro", "status": "active"}]}),
    ("pages/invoice.html", {
        "invoice": {"number": 7, "status": "open"}, "lines": [{"description": "Pro", "quantity": 1, "amount": "R$ 1"}],
        "discount": "R$ 1", "credit": "R$ 1", "total": "R$ 1", "amount_due": "R$ 1", "due_date": "01/03/2026",
        "overdue": True, "pix": {"code": "x", "qr": "data:image/svg+xml,", "expires_at": "02/03/2026"},
        "boleto": {"line": "1", "url": "https://b.test/1.pdf", "expires_at": "02/03/2026"}}),
    ("pages/card.html", {"token": "t", "account_name": "Maria", "error": "Recusado", "updated": True,
                         "current": {"brand": "visa", "last4": "0010", "exp": "12/2030"},
                         "gateway": {"tokenize_url": "/sandbox/core/v5/tokens", "public_key": "pk_test_x"}}),
    ("pages/card.html", {"token": "t", "account_name": "Maria", "gateway": None, "current": None}),
    ("pages/invoice.html", {
        "invoice": {"number": 7, "status": "open"}, "lines": [], "total": "R$ 1", "amount_due": "R$ 1",
        "due_date": "01/03/2026", "error": "Seu cartão foi recusado.", "csrf_token": "slot",
        "card": {"gateway": {"tokenize_url": "/sandbox/core/v5/tokens", "public_key": "pk_test_x"}, "action": "."}}),
    ("pages/invoice.html", {"invoice": {"number": 7, "status": "open"}, "lines": [], "total": "R$ 1",
                            "amount_due": "R$ 1", "processing": True}),
    ("pages/invoice.html", {"invoice": {"number": 7, "status": "paid"}, "lines": [], "total": "R$ 1",
                            "receipt": {"paid_at": "01/03/2026", "amount": "R$ 1", "method": "pix",
                                        "payment_id": "pay_1"}}),
])
def test_every_page_template_renders(rf, template, context, language):
    with translation.override(language):
        html = render_to_string(template, {**BASE, **context}, request=rf.get("/"))
    assert html.lstrip().startswith("<!DOCTYPE html>")
    assert "</html>" in html


def test_page_templates_are_all_covered():
    shipped = {p.name for p in (Path(cobrador.pages.__file__).parent / "templates" / "pages").glob("*.html")}
    # _card_form.html is the card form card.html and invoice.html include (rendered with both above).
    assert shipped == {"base.html", "not_found.html", "proposal.html", "invoice.html", "card.html", "_card_form.html"}


def test_invoice_reminders_link_to_the_invoice_page(api, clock):
    from cobrador.jobs.runner import run_job  # noqa: PLC0415

    invoice = invoice_with_documents(make_account(api.organization), number=45)
    run_job("invoice-reminders", as_of=clock.now() + timedelta(days=6))  # due in 7 days: one day before

    notice = Notice.objects.get(type="invoice_due_soon", channel="email")
    assert "/pages/i/" in notice.link
    assert "Fatura 45" in Client().get(_path(notice.link)).content.decode()
    assert invoice.public_id == notice.context["invoice"]["id"]
