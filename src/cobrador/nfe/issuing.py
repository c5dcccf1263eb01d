"""Issuing and cancelling NFS-e at NFe.io: three steps, never one transaction (as payments/charging.py).

1. a claim (one short transaction) takes due notes: an issue claim sets the note `processing` with
   `sent_at`; a cancel claim sets `sent_at` on a `cancel_pending` note; both push `next_attempt_at` a
   LEASE ahead, so no other worker takes them meanwhile;
2. the calls to NFe.io run outside any transaction, concurrently for a batch;
3. the answers are recorded in one transaction by services.apply_answer (forward-only), with a
   ServiceInvoiceCall row per call.

NFe.io honours no idempotency header: its one guard is the external id (our public id, or
`<public id>.<n>` after a retry), unique per company, a repeat refused with 400 "already exists". So an
issue is never sent again while its outcome is open: after a timeout or a 5xx (NFe.io's 500 may still
have created the note), a duplicate refusal, or a worker that died after sending (its lease runs out),
`follow_due` asks `GET .../external/{externalId}`. Only when NFe.io still does not know the external id
GIVE_UP_LOOKUP after sending is the note sent again, and then the external id itself stops a second note.

`sync` runs every part for what is due: the nfe-sync sweep (every 30 min) and the task enqueued when
notes are created (right after commit) both call it.
"""

import logging
import os
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects
from cobrador.nfe import nfeio, services
from cobrador.nfe.models import FiscalSettings, ServiceInvoice, ServiceInvoiceCall
from cobrador.payments.charging import call_concurrently, start_calls

logger = logging.getLogger(__name__)

BATCH_SIZE = int(os.environ.get("COBRADOR_NFE_BATCH_SIZE", "200"))
LEASE = timedelta(minutes=2)  # a claimed note nobody recorded an answer for is looked at again after this
LOOKUP_DELAY = timedelta(seconds=10)  # NFe.io indexes external ids a few seconds after a 202
POLL_DELAY = timedelta(minutes=1)  # a note NFe.io is still working on is asked about again after this
GIVE_UP_LOOKUP = timedelta(minutes=30)  # unknown to NFe.io this long after sending: send again


def _locked_due(condition: Q, *, as_of: datetime, limit: int) -> list[int]:
    due = ServiceInvoice.objects.filter(condition, next_attempt_at__lte=as_of).order_by("pk")
    if connection.vendor == "postgresql":
        due = due.select_for_update(skip_locked=True)
    return list(due.values_list("pk", flat=True)[:limit])


def _claim(condition: Q, *, as_of: datetime, limit: int, **updates) -> list[ServiceInvoice]:
    """Take up to `limit` due notes matching `condition` for this worker: one short transaction."""
    now = clock.now()
    with transaction.atomic():
        ids = _locked_due(condition, as_of=as_of, limit=limit)
        if not ids:
            return []
        ServiceInvoice.objects.filter(pk__in=ids).update(next_attempt_at=now + LEASE, updated_at=now, **updates)
    # What the calls need: the note and its borrower (answers are recorded on freshly locked rows).
    return list(ServiceInvoice.objects.filter(pk__in=ids).select_related("account").order_by("pk"))


def _configs(notes) -> dict[int, FiscalSettings]:
    return {c.organization_id: c for c in FiscalSettings.objects.filter(
        organization_id__in={n.organization_id for n in notes}).select_related("organization")}


def _call(note: ServiceInvoice, config: FiscalSettings | None, operation: str):
    """One call to NFe.io about `note`: (operation, result or NfeioError, http status, ms)."""
    if config is None or not config.nfeio_company_id:
        return operation, nfeio.Refused("the organization has no NFe.io company configured"), None, 0
    client = services.client_for(config)
    company = config.nfeio_company_id
    if operation == "issue":
        body = services.issue_body(note, config, note.account)
        call = lambda: client.issue(company_id=company, body=body)  # noqa: E731
    elif operation == "cancel":
        call = lambda: client.cancel(company_id=company, nfeio_id=note.nfeio_id)  # noqa: E731
    elif note.nfeio_id:
        operation, call = "fetch", lambda: client.fetch(company_id=company, nfeio_id=note.nfeio_id)  # noqa: E731
    else:
        operation, call = "lookup", lambda: client.find_by_external_id(  # noqa: E731
            company_id=company, external_id=note.external_id)
    result, ms = nfeio.timed(call)
    return operation, result, getattr(client, "last_status", None), ms


def _outcome(result) -> str:
    if result is None:
        return "not found"
    if isinstance(result, nfeio.NfeioError):
        return f"{type(result).__name__}: {result.message}"[:200]
    return (result.flow_status or "answered")[:200]


def _record(notes: list[ServiceInvoice], answers: list, counts: dict) -> None:
    """Step 3 for a batch: one transaction, the notes locked, every call logged."""
    now = clock.now()
    changes = services.Changes()
    with transaction.atomic():
        locked = {n.pk: n for n in ServiceInvoice.objects.select_for_update().filter(
            pk__in=[n.pk for n in notes]).select_related("organization", "account", "invoice").order_by("pk")}
        calls = []
        for claimed, (operation, result, status, ms) in zip(notes, answers, strict=True):
            note = locked[claimed.pk]
            calls.append(build(ServiceInvoiceCall, service_invoice_id=note.pk, operation=operation,
                               http_status=status, outcome=_outcome(result), duration_ms=ms, at=now))
            outcome = _apply(note, claimed, operation, result, changes, now)
            counts[outcome] = counts.get(outcome, 0) + 1
        insert_objects(calls)
        changes.write()


def _apply(note, claimed, operation: str, result, changes: services.Changes, now) -> str:
    if note.sent_at != claimed.sent_at and operation in ("issue", "cancel"):
        return "superseded"  # settled meanwhile (a callback, another worker after the lease): theirs stands
    waiting = note.status in ("processing", "cancel_pending")
    if (isinstance(result, nfeio.NoteAnswer) and operation == "issue" and result.environment
            and result.environment != note.environment and note.status == "processing"):
        # The company is set up in the other environment: a test organization's note must never be a
        # fiscal one (nor the reverse). Told, never recorded as issued.
        services.fail(note=note, message=f"the NFe.io company issues in {result.environment}, but this "
                                         f"organization's notes belong in {note.environment}", changes=changes)
        return "failed"
    if isinstance(result, nfeio.NoteAnswer):
        services.apply_answer(note=note, answer=result, changes=changes, via=operation)
        if note.status == "processing" and note.nfeio_id:
            note.sent_at = None  # the note exists: followed by its id from now on
        if (note.status == "cancel_pending" and result.flow_status == services.ISSUED_FLOW
                and note.sent_at is not None and note.sent_at <= now - GIVE_UP_LOOKUP):
            note.sent_at = None  # the cancellation never reached NFe.io: send it again
        if note.status == "processing" or (note.status == "cancel_pending" and note.sent_at is not None):
            note.next_attempt_at = now + POLL_DELAY  # NFe.io is working on it: ask again later
        changes.save(note)
        return note.status
    if not waiting:
        return "settled"
    if result is None:  # lookup: NFe.io does not know the external id (yet)
        if note.sent_at is not None and note.sent_at <= now - GIVE_UP_LOOKUP:
            if note.status == "processing":
                note.status = "pending"
            note.sent_at, note.next_attempt_at = None, now
            changes.save(note)
            return "resend"
        note.next_attempt_at = now + LOOKUP_DELAY
        changes.save(note)
        return "not_found_yet"
    if isinstance(result, nfeio.RateLimited):
        if operation == "issue":
            note.status, note.sent_at = "pending", None
        elif operation == "cancel":
            note.sent_at = None
        note.next_attempt_at = now + timedelta(seconds=max(1.0, result.retry_after))
        changes.save(note)
        return "rate_limited"
    if isinstance(result, nfeio.DuplicateExternalId):
        note.next_attempt_at = now  # it exists: look it up by external id
        changes.save(note)
        return "duplicate"
    if isinstance(result, nfeio.Refused) and operation == "issue":
        services.fail(note=note, message=result.message, changes=changes)
        return "failed"
    if isinstance(result, nfeio.Refused) and operation == "cancel":
        note.status, note.error, note.sent_at, note.next_attempt_at = "cancel_failed", result.message[:2000], None, None
        note.updated_at = now
        changes.save(note)
        return "cancel_failed"
    # Ambiguous, or a refused poll: ask again later; an unsettled send stays unsettled (never resent here).
    note.next_attempt_at = now + (LOOKUP_DELAY if operation in ("issue", "lookup") else POLL_DELAY)
    changes.save(note)
    return "unknown"


def _run(notes: list[ServiceInvoice], operation: str, counts: dict) -> None:
    if not notes:
        return
    configs = _configs(notes)
    answers = call_concurrently(lambda note: _call(note, configs.get(note.organization_id), operation), notes)
    _record_answers(notes, answers, counts)


def _record_answers(notes: list[ServiceInvoice], answers: list, counts: dict) -> None:
    try:
        _record(notes, answers, counts)
    except Exception:
        # The notes stay claimed; their lease runs out and follow_due asks NFe.io about them.
        logger.exception("recording %d NFe.io answers failed; the sync will ask again", len(notes))
        counts["unrecorded"] = counts.get("unrecorded", 0) + len(notes)


def issue_pending(*, as_of: datetime, batch_size: int = BATCH_SIZE, max_batches: int | None = None) -> dict:
    """Send every pending note, a batch at a time; the calls of one batch overlap the recording of the
    batch before (as payments.charging does)."""
    counts: dict = {}
    batches = 0
    in_flight = None  # (notes, wait for their answers) of the batch whose calls are running
    while True:
        started = None
        if max_batches is None or batches < max_batches:
            now = clock.now()
            notes = _claim(Q(status="pending"), as_of=as_of, limit=batch_size, status="processing", sent_at=now)
            if notes:
                batches += 1
                for note in notes:
                    note.sent_at = now
                configs = _configs(notes)
                started = (notes, start_calls(
                    lambda note, configs=configs: _call(note, configs.get(note.organization_id), "issue"), notes))
        if in_flight is not None:
            _record_answers(in_flight[0], in_flight[1](), counts)
        in_flight = started
        if in_flight is None:
            return counts


def cancel_pending(*, as_of: datetime, batch_size: int = BATCH_SIZE) -> dict:
    counts: dict = {}
    while True:
        now = clock.now()
        notes = _claim(Q(status="cancel_pending", sent_at__isnull=True), as_of=as_of, limit=batch_size,
                       sent_at=now)
        if not notes:
            return counts
        for note in notes:
            note.sent_at = now
        _run(notes, "cancel", counts)


# In flight at NFe.io: an issue (by id, or by external id while its send is unsettled) or a sent cancellation.
FOLLOWED = Q(status="processing") | Q(status="cancel_pending", sent_at__isnull=False)


def follow_due(*, as_of: datetime, batch_size: int = BATCH_SIZE) -> dict:
    """Ask NFe.io about notes whose outcome is open: by id when we have it, else by external id."""
    counts: dict = {}
    after = 0  # one pass: a note asked about now and due again at once waits for the next sync
    while True:
        notes = _claim(FOLLOWED & Q(pk__gt=after), as_of=as_of, limit=batch_size)
        if not notes:
            return counts
        after = notes[-1].pk
        _run(notes, "follow", counts)


def release_blocked(*, batch_size: int = 500) -> int:
    released, after = 0, 0
    while True:
        with transaction.atomic():
            notes = list(ServiceInvoice.objects.select_for_update().filter(status="blocked", pk__gt=after)
                         .select_related("account").order_by("pk")[:batch_size])
            if not notes:
                return released
            after = notes[-1].pk
            released += services.release_blocked(notes=notes, configs=_configs(notes))


def sync(*, as_of: datetime | None = None) -> dict:
    """Everything due at `as_of`: release blocked notes, issue, cancel, then follow open outcomes."""
    as_of = as_of or clock.now()
    counts = {"released": release_blocked()}
    for part, run in (("issue", issue_pending), ("cancel", cancel_pending), ("follow", follow_due)):
        for outcome, n in run(as_of=as_of).items():
            counts[f"{part}_{outcome}"] = counts.get(f"{part}_{outcome}", 0) + n
    return counts
