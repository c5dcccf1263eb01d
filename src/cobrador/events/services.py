"""Domain events: recorded in the business transaction, then handed to every registered sink (webhook
deliveries, customer notices, the MRR ledger, dunning, NFS-e issuance, the charge queue) in that same
transaction, which writes what they imply (outbox rows among them)."""

import json
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction

from cobrador.core import clock
from cobrador.core.bulk import JSONText, build, insert_objects
from cobrador.core.ids import new_public_id
from cobrador.events.models import Event
from cobrador.events.types import EVENT_TYPES
from cobrador.jobs.retention import delete_in_batches

# Each sink takes a list of freshly created events (all of one organization or several).
_sinks: list[Callable[[list[Event]], None]] = []


def register_sink(sink: Callable[[list[Event]], None]) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


@dataclass(frozen=True)
class EventDraft:
    organization: object
    type: str
    data: dict
    # False: the customer hears of this fact with a later event of the same business step, so no notice
    # is drafted from this one (a dunning card failure whose attempt goes on to issue a boleto or PIX).
    notify: bool = True


# The events (built, not yet written) of the `recorded_together` block of this thread, or None.
_together = threading.local()


@contextmanager
def recorded_together() -> Iterator[None]:
    """Inside a transaction: the events recorded in this block are written, and handed to the sinks, in
    one round when it ends (still in the transaction) instead of one round each. A request that records
    several (a sign-up: subscription.created, then invoice.created) pays for one insert, one webhook
    endpoint lookup and one reaction of each sink. Each event's data is serialized when it is recorded,
    as outside a block. Code inside the block must not rely on a sink having reacted to an event
    recorded earlier in it. If the block raises, its events are dropped with the transaction. A nested
    block joins the outer one."""
    if getattr(_together, "events", None) is not None:
        yield
        return
    _together.events = []
    try:
        yield
        events = _together.events
    finally:
        _together.events = None
    _write(events)


def _build(drafts: Iterable[EventDraft]) -> list[Event]:
    now = clock.now()
    events = []
    for draft in drafts:
        if draft.type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {draft.type!r}")
        # Serialized once: written as this text, and read back so that sinks see what a reader will.
        events.append(build(Event, public_id=new_public_id("evt"), organization=draft.organization,
                            type=draft.type, data=JSONText(json.dumps(draft.data, cls=DjangoJSONEncoder)),
                            created_at=now))
        events[-1].notify = draft.notify
    return events


def _write(events: list[Event]) -> None:
    if not events:
        return
    insert_objects(events, returning_ids=True)
    for event in events:
        event.data = json.loads(event.data)
    for sink in _sinks:
        sink(events)  # a sink that writes outbox rows wakes their drainers (wake_outbox_after_commit)


def record_events(drafts: Iterable[EventDraft]) -> list[Event]:
    """Write many events and their outbox rows with a few bulk inserts (sweeps use this). Inside a
    `recorded_together` block they are only built, and [] is returned: the block writes them."""
    events = _build(drafts)
    pending = getattr(_together, "events", None)
    if pending is not None:
        pending.extend(events)
        return []
    _write(events)
    return events


def record_event(*, organization, type: str, data: dict) -> Event | None:  # noqa: A002
    """The event, or None inside a `recorded_together` block (written when the block ends)."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("record_event must run inside the business transaction")
    events = record_events([EventDraft(organization, type, data)])
    return events[0] if events else None


def event_data(event: Event) -> dict:
    return {
        "id": event.public_id,
        "object": "event",
        "type": event.type,
        "created_at": event.created_at,
        "data": event.data,
    }


def prune_old_events(as_of: datetime) -> int:
    """retention-cleanup: events older than COBRADOR_RETENTION_EVENT_DAYS, once none of their webhook
    deliveries is still pending."""
    return delete_in_batches(Event.objects.filter(
        created_at__lt=as_of - timedelta(days=settings.RETENTION_DAYS["events"])).exclude(
        webhook_deliveries__status="pending"))
