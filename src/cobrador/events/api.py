from django.shortcuts import get_object_or_404
from ninja import Router

from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.events.models import Event
from cobrador.events.schemas import EventOut, EventPage
from cobrador.events.services import event_data

router = Router(tags=["events"])
register_path_id("event_id", Event)


@router.get("/events", response=EventPage, summary="List events, newest first")
def list_events(request, type: str | None = None, limit: Limit = 20, cursor: str | None = None):  # noqa: A002
    events = Event.objects.filter(organization=request.auth)
    if type:
        events = events.filter(type=type)
    return paginate(events, cursor=cursor, limit=limit, serialize=event_data)


@router.get("/events/{event_id}", response=EventOut, summary="Retrieve an event")
def get_event(request, event_id: str):
    return event_data(get_object_or_404(Event, organization=request.auth, public_id=event_id))
