"""Cursor pagination: newest first, the cursor names the last row seen (opaque to clients)."""

import base64
from typing import Generic, TypeVar

from ninja import Schema

from cobrador.core.errors import ValidationFailed

T = TypeVar("T")
MAX_LIMIT = 100


class Page(Schema, Generic[T]):  # noqa: UP046 - the form pydantic's and ninja's docs use for generic schemas
    data: list[T]
    has_more: bool
    next_cursor: str | None = None


def _decode(cursor: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(cursor.encode() + b"==").decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationFailed("malformed cursor", field="cursor") from exc


def _encode(pk: int) -> str:
    return base64.urlsafe_b64encode(str(pk).encode()).decode().rstrip("=")


def paginate(queryset, *, cursor: str | None, limit: int, serialize) -> dict:
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(f"limit must be between 1 and {MAX_LIMIT}", field="limit")
    queryset = queryset.order_by("-pk")
    if cursor:
        queryset = queryset.filter(pk__lt=_decode(cursor))
    rows = list(queryset[: limit + 1])
    has_more = len(rows) > limit
    rows = rows[:limit]
    return {
        "data": [serialize(row) for row in rows],
        "has_more": has_more,
        "next_cursor": _encode(rows[-1].pk) if has_more else None,
    }
