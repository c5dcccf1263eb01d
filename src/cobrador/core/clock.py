"""The only source of time in cobrador.

Real time by default. Tests, simulations and `cobrador jobs run --at` set a fixed or moving
time here; nothing in the code base calls `datetime.now()` or `timezone.now()` directly.
"""

import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

_lock = threading.Lock()
_frozen: datetime | None = None


def now() -> datetime:
    frozen = _frozen
    if frozen is not None:
        return frozen
    return datetime.now(UTC)


def set(at: datetime | None) -> None:  # noqa: A001 - clock.set reads naturally
    """Freeze the clock at `at` (aware), or return to real time with None."""
    global _frozen
    if at is not None and at.tzinfo is None:
        raise ValueError("the clock takes timezone-aware datetimes")
    with _lock:
        _frozen = at.astimezone(UTC) if at is not None else None


def advance(delta: timedelta) -> datetime:
    """Move a frozen clock forward; starts from real time if the clock was not frozen."""
    global _frozen
    with _lock:
        _frozen = (_frozen or datetime.now(UTC)) + delta
        return _frozen


def is_frozen() -> bool:
    return _frozen is not None


@contextmanager
def frozen_at(at: datetime):
    previous = _frozen
    set(at)
    try:
        yield at
    finally:
        set(previous)


def wall_now() -> datetime:
    """Real time even when the clock is frozen: only for transport facts checked against another
    machine's clock (the Standard Webhooks `webhook-timestamp`) and for measuring durations."""
    return datetime.now(UTC)
