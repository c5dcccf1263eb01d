"""Issuing NFS-e through the NFe.io fake: both policies end to end, blocked notes, rejections, the
ambiguous answers (5xx that created the note, timeouts, duplicates, 429), cancellation."""

from datetime import timedelta

from django.db import transaction

from cobrador.core import clock as clock_module
from cobrador.events.models import Event
from cobrador.invoicing.services import void_invoice
from cobrador.nfe.models import ServiceInvoice
from cobrador.payments.charging import charge_invoice, refund_payment
from tests.nfe.conftest import ADDRESS, configure, deliver_events, make_account, note_of, sync
from tests.payments.billing import add_card, make_invoice
from tests.subscriptions.conftest import invoice as run_invoice_generation
from tests.subscriptions.conftest import make_plan, subscribe, utc


def pay(organization, invoice):
    return charge_invoice(organization=organization, invoice=invoice)


def later(minutes=2):
    clock_module.set(clock_module.now() + timedelta(minutes=minutes))


def nfe_events(organization):
    return list(Event.objects.filter(organization=organization, type__startswith="nfe.").order_by("pk")
                .values_list("type", flat=True))


def test_on_payment_a_paid_invoice_gets_one_issued_note_with_its_number_and_links(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account, amount=4990)
    assert not ServiceInvoice.objects.filter(invoice=invoice).exists()  # not paid yet

    payment = pay(org, invoice)
    assert payment.status == "succeeded"
    note = note_of(invoice)
    assert (note.status, note.environment, note.amount, note.external_id) == ("pending", "Development", 4990,
                                                                              note.public_id)
    sync()
    note.refresh_from_db()
    assert note.status == "processing" and note.nfeio_id and note.flow_status == "WaitingCalculateTaxes"
    [request] = nfeio.issue_requests()
    body = request.json()
    assert body["servicesAmount"] == 49.9 and body["externalId"] == note.public_id
    assert body["borrower"]["federalTaxNumber"] == 52998224725 and body["borrower"]["type"] == "NaturalPerson"
    assert body["borrower"]["address"]["city"]["code"] == "3550308"
    assert body["borrower"]["address"]["postalCode"] == "04015-020"
    assert body["cityServiceCode"] == "2690" and body["description"] == "Plano Pro"
    assert request.headers["authorization"] == nfeio.api_key

    later()
    sync()  # polls the note: the fake settles it on read
    note.refresh_from_db()
    assert note.status == "issued" and note.number.startswith("2026") and note.check_code
    assert len(note.access_key) == 50 and note.pdf_url.endswith(f"/serviceinvoices/{note.nfeio_id}/pdf")
    assert nfe_events(org) == ["nfe.issued"]
    assert nfeio.notes_for(note.external_id) == 1
    assert [c.operation for c in note.calls.order_by("pk")] == ["issue", "fetch"]
    assert [c.http_status for c in note.calls.order_by("pk")] == [202, 200]

    invoice_object = fiscal.get(f"/v1/invoices/{invoice.public_id}").json()
    assert invoice_object["service_invoice"]["id"] == note.public_id
    assert invoice_object["service_invoice"]["status"] == "issued"


def test_on_invoice_created_the_generation_sweep_writes_the_notes_and_a_rerun_writes_none(fiscal, nfeio):
    org = fiscal.organization
    configure(org, nfeio, policy="on_invoice_created")
    account = make_account(org)
    plan = make_plan(org, amount=10000)
    subscribe(org, account, plan)
    run_invoice_generation(utc(2026, 3, 2, 1))
    run_invoice_generation(utc(2026, 3, 2, 2))
    [note] = ServiceInvoice.objects.filter(organization=org)
    assert note.status == "pending" and note.amount == 10000
    sync()
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "issued" and len(nfeio.issue_requests()) == 1
    # The invoice is then paid: under this policy that writes no second note.
    add_card(account)
    pay(org, note.invoice)
    assert ServiceInvoice.objects.filter(invoice=note.invoice).count() == 1


def test_policy_never_and_zero_totals_write_no_note(fiscal, nfeio):
    org = fiscal.organization
    configure(org, nfeio, policy="never")
    account = make_account(org)
    add_card(account)
    pay(org, make_invoice(account))
    assert not ServiceInvoice.objects.exists()


def test_a_repeated_sweep_never_sends_a_note_twice(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoices = [make_invoice(account, amount=1000 + i) for i in range(5)]
    for invoice in invoices:
        pay(org, invoice)
    for _ in range(3):
        sync()
    later()
    for _ in range(3):
        sync()
    assert len(nfeio.issue_requests()) == 5
    assert set(ServiceInvoice.objects.values_list("status", flat=True)) == {"issued"}
    assert all(nfeio.notes_for(n.external_id) == 1 for n in ServiceInvoice.objects.all())


def test_an_account_without_fiscal_data_is_blocked_naming_the_field_and_released_once_fixed(fiscal, nfeio):
    org = fiscal.organization
    address = {key: value for key, value in ADDRESS.items() if key != "city_code"}
    account = make_account(org, address=address)
    add_card(account)
    invoice = make_invoice(account)
    payment = pay(org, invoice)
    assert payment.status == "succeeded"  # the note never blocks the charge
    note = note_of(invoice)
    assert note.status == "blocked" and note.blocked_reason == "billing account: address.city_code is required"
    sync()
    assert nfeio.issue_requests() == []

    response = fiscal.patch(f"/v1/billing_accounts/{account.public_id}",
                            {"address": {**address, "city_code": "3550308"}})
    assert response.status_code == 200, response.content
    sync()
    note.refresh_from_db()
    assert note.status == "processing" and len(nfeio.issue_requests()) == 1


def test_a_city_hall_rejection_fails_the_note_tells_the_organization_and_retry_issues_it_after_the_fix(
        fiscal, nfeio):
    org = fiscal.organization
    nfeio.reject_service_codes["2690"] = "Código de serviço 2690 não permitido para o município"
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    pay(org, invoice)
    sync()
    later()
    sync()
    note = note_of(invoice)
    assert note.status == "failed"
    assert note.error == "Código de serviço 2690 não permitido para o município" == note.flow_message
    assert nfe_events(org) == ["nfe.failed"]
    from cobrador.notifications.models import Notice

    [notice] = Notice.objects.filter(organization=org, type="nfe_failed")
    assert notice.recipient == org.billing_email

    # Retrying before the fix fails the same way; after it, the note is issued under a new external id.
    configure(org, nfeio, city_service_code="0107")
    response = fiscal.post(f"/v1/service_invoices/{note.public_id}/retry")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "pending" and response.json()["external_id"] == f"{note.public_id}.1"
    sync()
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "issued" and note.external_id == f"{note.public_id}.1"
    assert nfe_events(org) == ["nfe.failed", "nfe.issued"]
    assert fiscal.post(f"/v1/service_invoices/{note.public_id}/retry").status_code == 409


def test_a_500_that_created_the_note_is_resolved_by_its_external_id_not_by_issuing_again(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    nfeio.fail_next("500_after_create")
    pay(org, invoice)
    sync()
    note = note_of(invoice)
    assert note.status == "processing" and note.nfeio_id == "" and note.sent_at is not None
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "issued" and note.nfeio_id
    assert len(nfeio.issue_requests()) == 1 and nfeio.notes_for(note.external_id) == 1
    assert [c.operation for c in note.calls.order_by("pk")] == ["issue", "lookup"]
    assert [c.http_status for c in note.calls.order_by("pk")] == [500, 200]


def test_a_timeout_then_a_lookup_that_finds_nothing_sends_again_only_after_the_grace_and_never_twice(
        fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    nfeio.fail_next("timeout")  # nothing created, no answer
    pay(org, invoice)
    sync()
    note = note_of(invoice)
    assert note.status == "processing" and note.sent_at is not None
    later(1)
    sync()  # NFe.io does not know it (yet): wait, never resend at once
    assert len(nfeio.issue_requests()) == 1
    later(31)
    sync()  # given up on: back to pending
    sync()  # and sent again: the external id guards against a second note
    note.refresh_from_db()
    assert len(nfeio.issue_requests()) == 2 and note.status == "processing" and note.nfeio_id
    assert nfeio.notes_for(note.external_id) == 1


def test_a_duplicate_external_id_answer_adopts_the_existing_note(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    pay(org, invoice)
    note = note_of(invoice)
    # NFe.io already holds a note under this external id (an earlier send whose answer was lost).
    nfeio.fail_next("500_after_create")
    sync()
    later(31)
    ServiceInvoice.objects.filter(pk=note.pk).update(status="pending", sent_at=None,
                                                     next_attempt_at=clock_module.now())
    sync()
    note.refresh_from_db()
    assert note.status in ("processing", "issued") and note.nfeio_id
    assert nfeio.notes_for(note.external_id) == 1
    assert "DuplicateExternalId" in note.calls.order_by("pk")[1].outcome


def test_429_waits_for_retry_after_then_issues(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    nfeio.retry_after = 120
    nfeio.fail_next("429")
    pay(org, invoice)
    sync()
    note = note_of(invoice)
    assert note.status == "pending" and note.next_attempt_at == clock_module.now() + timedelta(seconds=120)
    sync()
    assert len(nfeio.issue_requests()) == 1
    later(3)
    sync()
    note.refresh_from_db()
    assert note.status == "processing" and len(nfeio.issue_requests()) == 2


def note_of_a_renewal_after_two_syncs(fiscal, nfeio, *, reject: bool = False) -> ServiceInvoice:
    """A subscription's first renewal invoiced under on_invoice_created, its note synced twice (issued, or
    failed when NFe.io rejects it)."""
    org = fiscal.organization
    configure(org, nfeio, policy="on_invoice_created")
    if reject:
        nfeio.reject_next("Rejeitada")
    subscribe(org, make_account(org), make_plan(org, amount=10000))
    run_invoice_generation(utc(2026, 3, 2, 1))
    note = ServiceInvoice.objects.get(organization=org)
    sync()
    later()
    sync()
    note.refresh_from_db()
    return note


def test_voiding_the_invoice_cancels_its_issued_note(fiscal, nfeio):
    note = note_of_a_renewal_after_two_syncs(fiscal, nfeio)
    assert note.status == "issued"
    with transaction.atomic():
        void_invoice(invoice=note.invoice)
    note.refresh_from_db()
    assert note.status == "cancel_pending"
    sync()
    note.refresh_from_db()
    assert note.status == "cancel_pending" and nfeio.note(note.nfeio_id)["flowStatus"] == "WaitingSendCancel"
    nfeio.advance()
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "canceled" and note.canceled_at is not None
    assert nfe_events(fiscal.organization) == ["nfe.issued", "nfe.canceled"]


def test_a_full_refund_cancels_the_note_and_a_failed_cancellation_can_be_retried(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    payment = pay(org, invoice)
    sync()
    later()
    sync()
    note = note_of(invoice)
    assert note.status == "issued"
    nfeio.cancel_fails = True
    refund_payment(organization=org, payment=payment, amount=None)
    note.refresh_from_db()
    assert note.status == "cancel_pending"
    sync()
    nfeio.advance()
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "cancel_failed" and note.error == "Prazo de cancelamento expirado"
    nfeio.cancel_fails = False
    nfeio.notes[note.nfeio_id]["flowStatus"] = "Issued"  # the city hall lets it be canceled now
    assert fiscal.post(f"/v1/service_invoices/{note.public_id}/retry").json()["status"] == "cancel_pending"
    sync()
    nfeio.advance()
    later()
    sync()
    note.refresh_from_db()
    assert note.status == "canceled"


def test_a_partial_refund_does_not_cancel(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account, amount=10000)
    payment = pay(org, invoice)
    sync()
    later()
    sync()
    refund_payment(organization=org, payment=payment, amount=100)
    assert note_of(invoice).status == "issued"


def test_webhooks_settle_notes_before_any_poll(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    pay(org, invoice)
    sync()
    nfeio.advance()
    assert deliver_events(fiscal.client, org, nfeio) == [200]
    note = note_of(invoice)
    assert note.status == "issued" and note.number
    later()
    sync()  # a poll after the callback changes nothing
    assert nfe_events(org) == ["nfe.issued"]


def test_a_company_in_the_other_environment_fails_the_note_instead_of_recording_it(fiscal, nfeio):
    org = fiscal.organization
    nfeio.companies[nfeio.company_id] = "Production"  # a test organization pointed at a live company
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    pay(org, invoice)
    sync()
    note = note_of(invoice)
    assert note.status == "failed" and "Production" in note.error and note.environment == "Development"
    assert nfe_events(org) == ["nfe.failed"]


def test_voiding_an_invoice_whose_note_failed_cancels_it_so_no_retry_issues_it(fiscal, nfeio):
    note = note_of_a_renewal_after_two_syncs(fiscal, nfeio, reject=True)
    assert note.status == "failed"
    with transaction.atomic():
        void_invoice(invoice=note.invoice)
    note.refresh_from_db()
    assert note.status == "canceled"
    assert fiscal.post(f"/v1/service_invoices/{note.public_id}/retry").status_code == 409
