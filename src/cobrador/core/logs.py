"""Log records that say where they come from: the request, organization, job and run being worked on.

A request middleware (`cobrador.ops.middleware.RequestContextMiddleware`) and the job runner set the
context; `ContextFilter` copies it onto every record, and the formatters print it: one JSON object a
line with COBRADOR_LOG_FORMAT=json, plain text (the context appended as key=value) otherwise.
"""

import json
import logging
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

CONTEXT_FIELDS = ("request_id", "organization", "job", "run_id")
_context: ContextVar[dict] = ContextVar("cobrador_log_context", default={})  # noqa: B039 - never mutated


def current() -> dict:
    return _context.get()


@contextmanager
def context(**values):
    """Add `values` (those not None) to the log context for the duration of the block."""
    token = _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})
    try:
        yield
    finally:
        _context.reset(token)


def start_request(request_id: str) -> None:
    """A new request on this thread: its context is its id alone, kept until `end_request` (when the
    answer is closed), so the 4xx/5xx line Django logs after the middleware chain returned carries it."""
    _context.set({"request_id": request_id})


def end_request(**kwargs) -> None:
    """Receiver of Django's request_finished: what follows on this thread belongs to no request."""
    _context.set({})


def bind(**values) -> None:
    """Add `values` to the current context (e.g. the organization, known once a request is authenticated),
    until the enclosing `context()` block ends or the next request starts."""
    _context.set({**_context.get(), **{k: v for k, v in values.items() if v is not None}})


class ContextFilter(logging.Filter):
    """Copies the log context onto each record (as attributes named after CONTEXT_FIELDS)."""

    def filter(self, record: logging.LogRecord) -> bool:
        values = _context.get()
        for field in CONTEXT_FIELDS:
            if not hasattr(record, field):
                setattr(record, field, values.get(field))
        return True


# Paths whose 503 is an answer, not a failure: /readyz says "not ready" (and logs why at WARNING itself).
PROBE_PATHS = {"/readyz"}


class ClientErrorsAtInfo(logging.Filter):
    """For `django.request`: a 4xx answer (a probe's 404, a client's bad request) is the client's
    business, and a readiness probe's 503 is its answer: both logged at INFO. Other 5xx stay ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if status is None:
            return True
        client_error = 400 <= status < 500 and record.levelno == logging.WARNING
        probe_answer = status == 503 and getattr(getattr(record, "request", None), "path", "") in PROBE_PATHS
        if client_error or probe_answer:
            if not logging.getLogger(record.name).isEnabledFor(logging.INFO):
                return False
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


class PlainFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        known = [f"{field}={getattr(record, field)}" for field in CONTEXT_FIELDS if getattr(record, field, None)]
        if not known:
            return text
        # The context goes on the first line, before any traceback.
        first, _, rest = text.partition("\n")
        return f"{first} [{' '.join(known)}]" + (f"\n{rest}" if rest else "")


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO-8601), level, logger, message, the context, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


def logging_setting(*, log_format: str, level: str, ox_level: str) -> dict:
    """The LOGGING dict for settings.py."""
    formats = {"text": "cobrador.core.logs.PlainFormatter", "json": "cobrador.core.logs.JsonFormatter"}
    if log_format not in formats:
        raise ValueError(f"COBRADOR_LOG_FORMAT must be 'text' or 'json', not {log_format!r}")
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "context": {"()": "cobrador.core.logs.ContextFilter"},
            "client_errors_at_info": {"()": "cobrador.core.logs.ClientErrorsAtInfo"},
        },
        "formatters": {"main": {"()": formats[log_format]}},
        "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "main", "filters": ["context"]}},
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            "django.request": {"filters": ["client_errors_at_info"]},
            "django_ox": {"level": ox_level},
            "django.tasks": {"level": ox_level},
            "httpx": {"level": "WARNING"},
            "axes.apps": {"level": "WARNING"},  # django-axes's version banner, on every process start
        },
    }
