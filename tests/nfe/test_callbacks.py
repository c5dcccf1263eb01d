"""NFe.io's account webhooks through the callbacks inbox: signature, dedupe (three copies at once),
the environment guard, partial events, a callback that arrives before our own call has returned."""

import uuid

from cobrador.callbacks import processing as callback_processing
from cobrador.callbacks.models import GatewayCallback
from cobrador.core import clock as clock_module
from cobrador.events.models import Event
from cobrador.nfe import issuing
from cobrador.payments.charging import charge_invoice
from tests.nfe.conftest import WEBHOOK_SECRET, callback_path, make_account, note_of, post_hook, sync
from tests.payments.billing import add_card, make_invoice


def paid_and_sent(fiscal, nfeio):
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    charge_invoice(organization=org, invoice=invoice)
    sync()
    return note_of(invoice)


def issued_document(nfeio, note) -> dict:
    nfeio.advance()
    nfeio.take_events()
    return nfeio.note(note.nfeio_id) | {}


def test_a_valid_signature_is_stored_processed_and_the_note_issued(fiscal, nfeio):
    note = paid_and_sent(fiscal, nfeio)
    document = {k: v for k, v in issued_document(nfeio, note).items() if not k.startswith("_")}
    response = post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully", document)
    assert response.status_code == 200, response.content
    callback = GatewayCallback.objects.get()
    assert (callback.provider, callback.status, callback.event_type) == ("nfeio", "received",
                                                                        "service_invoice.issued_successfully")
    assert callback.organization_id == fiscal.organization.pk and callback.gateway_id is None
    callback_processing.process_received()
    callback.refresh_from_db()
    note.refresh_from_db()
    assert callback.status == "processed" and note.status == "issued" and note.number
    assert callback.changes[0]["service_invoice"] == note.public_id
    # visible through the callbacks API, signature redacted
    shown = fiscal.get(f"/v1/callbacks/{callback.public_id}").json()
    assert shown["provider"] == "nfeio" and shown["headers"]["x-hub-signature"] == "[redacted]"


def test_a_bad_signature_is_401_and_stored_rejected(fiscal, nfeio):
    note = paid_and_sent(fiscal, nfeio)
    document = issued_document(nfeio, note)
    response = post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully", document,
                         secret="another-secret-of-thirty-two-characters!")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_signature"
    callback = GatewayCallback.objects.get()
    assert callback.status == "rejected" and callback.provider == "nfeio"
    callback_processing.process_received()
    note.refresh_from_db()
    assert note.status == "processing"


def test_a_missing_signature_and_an_unknown_token_are_refused(fiscal, nfeio):
    path = callback_path(fiscal.organization)
    assert fiscal.client.post(path, data=b'{"payload": {}}', content_type="application/json",
                              headers={"X-Hook-Id": "x", "X-Hook-Event": "service_invoice.issued_successfully"}
                              ).status_code == 401
    assert fiscal.client.post("/v1/callbacks/nfeio/nope", data=b"{}", content_type="application/json"
                              ).status_code == 404


def test_the_same_hook_sent_three_times_at_once_is_processed_once(fiscal, nfeio, transactional_db=None):
    note = paid_and_sent(fiscal, nfeio)
    document = issued_document(nfeio, note)
    hook_id = uuid.uuid4().hex
    answers = [post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully", document,
                         hook_id=hook_id) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["duplicate"] for a in answers] == [False, True, True]
    assert GatewayCallback.objects.count() == 1
    callback_processing.process_received()
    assert list(Event.objects.filter(type__startswith="nfe.").values_list("type", flat=True)) == ["nfe.issued"]


def test_another_environments_event_is_ignored(fiscal, nfeio):
    note = paid_and_sent(fiscal, nfeio)
    document = issued_document(nfeio, note) | {"environment": "Production"}
    post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully", document)
    callback_processing.process_received()
    callback = GatewayCallback.objects.get()
    note.refresh_from_db()
    assert callback.status == "ignored" and "Production" in callback.changes[0]["note"]
    assert note.status == "processing"


def test_partial_later_events_merge_only_what_they_carry(fiscal, nfeio):
    note = paid_and_sent(fiscal, nfeio)
    document = issued_document(nfeio, note)
    post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully", document)
    callback_processing.process_received()
    note.refresh_from_db()
    number, check_code = note.number, note.check_code
    # A cancel event carrying the id and the status only (the woo-nfe handler's observation).
    from tests.nfe.test_issuing import later

    fiscal.post(f"/v1/service_invoices/{note.public_id}/cancel")
    issuing.sync()
    post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.cancelled_successfully",
              {"id": note.nfeio_id})
    callback_processing.process_received()
    note.refresh_from_db()
    assert note.status == "canceled" and note.flow_status == "Cancelled"
    assert (note.number, note.check_code) == (number, check_code)  # not blanked by the partial event
    later()
    assert all(c.status == "processed" for c in GatewayCallback.objects.all())


def test_an_event_in_the_action_envelope_and_a_ping_are_understood(fiscal, nfeio):
    note = paid_and_sent(fiscal, nfeio)
    document = issued_document(nfeio, note)
    body, headers = nfeio.hook_request("service_invoice.issued_successfully", document, WEBHOOK_SECRET,
                                       envelope="action")
    del headers["X-Hook-Event"]  # the type then comes from the body's action
    response = fiscal.client.post(callback_path(fiscal.organization), data=body, content_type="application/json",
                                  headers={k: v for k, v in headers.items() if k != "Content-Type"})
    assert response.status_code == 200
    ping = b'{"action":"ping","webHook":{"Id":"x"}}'
    response = fiscal.client.post(callback_path(fiscal.organization), data=ping, content_type="application/json",
                                  headers={"X-Hub-Signature": nfeio.sign(WEBHOOK_SECRET, ping), "X-Hook-Id": "p1",
                                           "X-Hook-Event": "ping"})
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    callback_processing.process_received()
    note.refresh_from_db()
    assert note.status == "issued"


def test_a_callback_for_an_unknown_note_fails_and_is_retried(fiscal, nfeio):
    post_hook(fiscal.client, fiscal.organization, nfeio, "service_invoice.issued_successfully",
              {"id": "unknown", "externalId": "nfse_unknown", "flowStatus": "Issued"})
    callback_processing.process_received()
    callback = GatewayCallback.objects.get()
    assert callback.status == "failed" and "no service invoice" in callback.error
    assert callback.next_attempt_at is not None


def test_a_callback_before_our_call_returned_and_the_late_answer_end_in_one_issued_note(fiscal, nfeio):
    """The note is claimed and sent; NFe.io's webhook arrives (found by external id) before the 202 is
    recorded; the recorded answer then changes nothing."""
    org = fiscal.organization
    account = make_account(org)
    add_card(account)
    invoice = make_invoice(account)
    charge_invoice(organization=org, invoice=invoice)
    note = note_of(invoice)
    [claimed] = issuing._claim(issuing.Q(status="pending"), as_of=clock_module.now(), limit=10,
                               status="processing", sent_at=clock_module.now())
    claimed.sent_at = clock_module.now()
    answers = [issuing._call(claimed, issuing._configs([claimed])[org.pk], "issue")]
    nfeio.advance()
    [(event_type, document)] = nfeio.take_events()
    document.pop("id")  # as if NFe.io's id were not known to us at all: found by external id
    document["id"] = answers[0][1].nfeio_id
    post_hook(fiscal.client, org, nfeio, event_type, document)
    callback_processing.process_received()
    note.refresh_from_db()
    assert note.status == "issued" and note.nfeio_id
    counts: dict = {}
    issuing._record([claimed], answers, counts)
    note.refresh_from_db()
    assert note.status == "issued" and counts == {"superseded": 1}
    assert list(Event.objects.filter(type__startswith="nfe.").values_list("type", flat=True)) == ["nfe.issued"]
