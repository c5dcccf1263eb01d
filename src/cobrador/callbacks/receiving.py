"""Receiving a provider callback: store it raw, answer at once, process it later.

`POST /v1/callbacks/{provider}/{token}`; the token names the organization's gateway configuration.
Every request that reaches a configuration is stored (headers and body as received) in its own short
transaction before we answer:

* bad or missing signature: stored `rejected`, 401, nothing else happens;
* a body that is not JSON: stored `rejected`, 400;
* an event type we do not handle: stored `ignored`, 200;
* a new event: stored `received`, 200, and processing is enqueued in the same transaction;
* the same (provider, event id) again: 200, and nothing changes (the unique constraint decides, so
  three copies arriving at once store one row and change state once).

Processing is one task for many callbacks: a callback enqueues it only when no other callback received
in the last WAKE_WINDOW is still waiting (that one's task will take this one too). The callback-retry
sweep picks up anything left waiting longer.
"""

import json
import logging
import time
from datetime import timedelta

from django.db import IntegrityError, transaction

from cobrador.callbacks.errors import CallbackBodyInvalid, CallbackSignatureInvalid, CallbackUrlUnknown
from cobrador.callbacks.models import GatewayCallback
from cobrador.callbacks.providers import INBOUND
from cobrador.callbacks.tasks import process_received_callbacks
from cobrador.core import clock
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.registry import PROVIDERS, gateway_for

logger = logging.getLogger(__name__)

WAKE_WINDOW = timedelta(seconds=30)
MAX_BODY_BYTES = 1_000_000


def _event_type_hint(headers: dict[str, str], body: bytes) -> str:
    """The event's type as the provider names it, for display when we do not handle it."""
    for name in ("x-kobana-event", "x-hook-event"):
        if headers.get(name):
            return headers[name][:100]
    try:
        payload = json.loads(body)
    except ValueError:
        return ""
    if isinstance(payload, dict):
        return str(payload.get("type") or payload.get("event_code") or "")[:100]
    return ""


def _store(**fields) -> GatewayCallback:
    with transaction.atomic():  # on SQLite, waits for the write lock at BEGIN (core.sqlite3)
        return GatewayCallback.objects.create(**fields)


def _store_received(row: dict, event) -> GatewayCallback:
    with transaction.atomic():
        callback = GatewayCallback.objects.create(**row, status="received", event_id=event.event_id[:200],
                                                  event_type=event.event_type[:100])
        _wake_processing(callback)
    return callback


# A provider posts to one URL many times a second: its configuration (credentials decrypted) is kept
# this long per process, so a deactivated or re-keyed configuration takes effect within it.
CONFIG_SECONDS = 5.0
_configs: dict[tuple[str, str], tuple[float, GatewayConfig, object]] = {}


def _configuration(provider: str, token: str):
    """(config, gateway adapter) of the active configuration this callback URL names, or (None, None)."""
    key = (provider, token)
    cached = _configs.get(key)
    if cached is not None and time.monotonic() - cached[0] < CONFIG_SECONDS:
        return cached[1], cached[2]
    if provider in INBOUND:  # another app's provider (NFe.io): its endpoint verifies and parses
        config = INBOUND[provider].resolve(token)
        gateway = config
    else:
        config = GatewayConfig.objects.filter(provider=provider, callback_token=token, active=True).first() \
            if provider in PROVIDERS else None
    if config is None:  # not cached: a configuration created a moment later is found at once
        _configs.pop(key, None)
        return None, None
    if len(_configs) > 10_000:
        _configs.clear()
    if provider not in INBOUND:
        gateway = gateway_for(config)
    _configs[key] = (time.monotonic(), config, gateway)
    return config, gateway


def receive_callback(*, provider: str, token: str, headers: dict[str, str], body: bytes) -> GatewayCallback:
    """Store one inbound callback; returns the row (a new one, or the stored original of a duplicate,
    marked `duplicate = True`). Raises CallbackSignatureInvalid (401) or CallbackBodyInvalid
    (400), after storing, or CallbackUrlUnknown (404)."""
    config, gateway = _configuration(provider, token)
    if config is None:
        raise CallbackUrlUnknown("no gateway configuration for this callback URL")
    now = clock.now()
    row = {"organization_id": config.organization_id,
           "gateway": config if isinstance(config, GatewayConfig) else None, "provider": provider,
           "headers": headers, "body": body, "received_at": now}
    try:
        verified = len(body) <= MAX_BODY_BYTES and gateway.verify_callback(headers=headers, body=body)
    except Exception as exc:  # noqa: BLE001 - an error verifying is a failed verification
        logger.warning("verifying a %s callback raised %s", provider, type(exc).__name__)
        verified = False
    if not verified:
        _store(**row, status="rejected", error="invalid or missing signature", processed_at=now)
        raise CallbackSignatureInvalid("invalid or missing signature")
    try:
        json.loads(body)
    except ValueError:
        _store(**row, status="rejected", error="the body is not valid JSON", processed_at=now)
        raise CallbackBodyInvalid("the body is not valid JSON", field="body") from None
    try:
        event = gateway.parse_callback(headers=headers, body=body)
    except Exception as exc:  # noqa: BLE001 - a shape we do not understand: kept, visible, reprocessable
        logger.warning("parsing a %s callback failed: %s", provider, exc)
        return _store(**row, status="failed", event_type=_event_type_hint(headers, body),
                      error=f"could not parse the callback: {type(exc).__name__}: {exc}"[:2000])
    if event is None:
        return _store(**row, status="ignored", event_type=_event_type_hint(headers, body),
                      error="event type not handled", processed_at=now)
    try:
        callback = _store_received(row, event)
    except IntegrityError:
        original = GatewayCallback.objects.filter(provider=provider, event_id=event.event_id[:200]).first()
        if original is None:  # not a duplicate after all: let the provider retry
            raise
        original.duplicate = True
        return original
    return callback


def _wake_processing(callback: GatewayCallback) -> None:
    recent_waiting = GatewayCallback.objects.filter(
        status="received", received_at__gte=callback.received_at - WAKE_WINDOW).exclude(pk=callback.pk)
    if not recent_waiting.exists():
        process_received_callbacks.enqueue()


def reprocess(callback: GatewayCallback) -> GatewayCallback:
    """An operator asks for a callback to be processed again (inside the caller's transaction)."""
    callback.status, callback.error, callback.next_attempt_at, callback.attempts = "received", "", None, 0
    callback.save(update_fields=["status", "error", "next_attempt_at", "attempts"])
    process_received_callbacks.enqueue()
    return callback
