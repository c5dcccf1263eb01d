from datetime import datetime

from ninja import Schema


class EventOut(Schema):
    id: str
    object: str = "event"
    type: str
    created_at: datetime
    data: dict


class EventPage(Schema):
    data: list[EventOut]
    has_more: bool
    next_cursor: str | None = None
