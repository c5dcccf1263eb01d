"""Faults never make a second note at NFe.io (the fake counts them): two workers syncing at once, and a
worker killed with kill -9 after NFe.io created the note but before its answer was recorded."""

from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.core import clock as clock_module
from cobrador.nfe import issuing
from cobrador.nfe.models import ServiceInvoice
from cobrador.payments.charging import charge_invoice
from tests.concurrency import run_job_in_two_threads
from tests.factories import make_org
from tests.nfe.conftest import configure, make_account, note_of
from tests.payments.billing import add_card, make_invoice
from tests.processes import kill, start, wait_until, worker_env


def paid_invoices(organization, n):
    account = make_account(organization)
    add_card(account)
    invoices = [make_invoice(account, amount=1000 + i) for i in range(n)]
    for invoice in invoices:
        charge_invoice(organization=organization, invoice=invoice)
    return invoices


@pytest.mark.django_db(transaction=True)
def test_two_workers_syncing_at_once_send_each_note_once(nfeio, clock):
    org = make_org("Twice", "test").organization
    configure(org, nfeio)
    invoices = paid_invoices(org, 30)
    run_job_in_two_threads("nfe-sync", as_of=clock.now(), timeout=60)
    clock.advance(timedelta(minutes=2))
    run_job_in_two_threads("nfe-sync", as_of=clock.now(), timeout=60)
    assert len(nfeio.issue_requests()) == 30
    notes = ServiceInvoice.objects.filter(invoice__in=invoices)
    assert set(notes.values_list("status", flat=True)) == {"issued"}
    assert all(nfeio.notes_for(n.external_id) == 1 for n in notes)


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_issue_leaves_a_note_the_next_sync_adopts_without_sending_again(nfeio):
    clock_module.set(None)  # the subprocess runs on the real clock
    org = make_org("Killed", "test").organization
    configure(org, nfeio)
    [invoice] = paid_invoices(org, 1)
    nfeio.fault_delay = 60  # the answer never comes while the worker lives
    nfeio.fail_next("timeout_after_create")
    proc = start("jobs", "run", "nfe-sync", env=worker_env(COBRADOR_NFEIO_BASE_URL=nfeio.url,
                                                          COBRADOR_NFEIO_TIMEOUT="60"))
    try:
        wait_until(lambda: nfeio.notes_for(note_of(invoice).external_id) == 1, timeout=30)
    finally:
        kill(proc)
    note = note_of(invoice)
    assert note.status == "processing" and note.sent_at is not None and note.nfeio_id == ""

    later = clock_module.now() + issuing.LEASE + timedelta(seconds=1)
    clock_module.set(later)
    try:
        issuing.sync(as_of=later)  # the lease ran out: asked by external id, never sent again
    finally:
        clock_module.set(None)
    note.refresh_from_db()
    assert note.status == "issued" and note.nfeio_id
    assert len(nfeio.issue_requests()) == 1 and nfeio.notes_for(note.external_id) == 1
    assert [c.operation for c in note.calls.order_by("pk")] == ["lookup"]


@pytest.mark.django_db(transaction=True)
def test_a_repeated_event_and_a_concurrent_sink_write_one_note(nfeio, clock):
    """The unique (invoice, purpose) key settles two writers: the second insert is a no-op."""
    from cobrador.nfe import services

    org = make_org("Unique", "test").organization
    config = configure(org, nfeio)
    [invoice] = paid_invoices(org, 1)
    with transaction.atomic():
        again = services.create_notes(invoices=[invoice], configs={org.pk: config})
    assert again == [] and ServiceInvoice.objects.filter(invoice=invoice).count() == 1
