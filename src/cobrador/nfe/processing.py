"""NFe.io's account webhooks, through the callbacks inbox (callbacks/providers.py).

`POST /v1/callbacks/nfeio/{token}` (the token names the organization's fiscal settings) is stored raw by
callbacks/receiving.py before the answer: `X-Hub-Signature: sha1=<HEX HMAC-SHA1(secret, raw body)>`
checked (401 and stored rejected otherwise), deduplicated by `X-Hook-Id` (NFe.io sends no timestamp or
nonce: a replay is a duplicate and changes nothing). Processing applies each to its note here, with
services.apply_answer: forward-only, merging only the fields the event carries, and ignoring events of
another environment (a Production note is never recorded for a test organization, nor the reverse).

The type comes from `X-Hook-Event`, else the body's `action`; the note document from the body's
`payload`, else the body itself. A callback for a note we do not know yet (it arrived before our own
call returned and before the note's row named NFe.io's id) is found by its external id; one we cannot
find at all fails and is retried with backoff.
"""

import hashlib
import hmac
import json
import re
import time
from dataclasses import dataclass

from django.db.models import Q

from cobrador.callbacks.processing import CallbackNotApplicable
from cobrador.callbacks.providers import InboundProvider, register_inbound_provider
from cobrador.nfe import nfeio, services
from cobrador.nfe.models import FiscalSettings, ServiceInvoice

PROVIDER = "nfeio"
# What each service_invoice event means when its document does not say (a partial event).
FLOW_OF_EVENT = {
    "service_invoice.issued_successfully": services.ISSUED_FLOW,
    "service_invoice.issued_error": services.FAILED_FLOW,
    "service_invoice.issued_failed": services.FAILED_FLOW,
    "service_invoice.cancelled_successfully": services.CANCELED_FLOW,
    "service_invoice.cancelled_error": services.CANCEL_FAILED_FLOW,
    "service_invoice.cancelled_failed": services.CANCEL_FAILED_FLOW,
    "service_invoice.pulled": "",
}
_RETRY_SUFFIX = re.compile(r"\.[0-9]+$")


class NoteNotFound(CallbackNotApplicable):
    pass


@dataclass(frozen=True)
class HookEvent:
    event_id: str
    event_type: str


def _signature_ok(secret: str, headers: dict, body: bytes) -> bool:
    sent = headers.get("x-hub-signature", "")
    if not secret or not sent.lower().startswith("sha1="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    return hmac.compare_digest(sent[5:].strip().lower(), expected)


def _event_type(headers: dict, body: dict) -> str:
    return str(headers.get("x-hook-event") or body.get("action") or "")[:100]


def _document(body: dict) -> dict:
    payload = body.get("payload")
    return payload if isinstance(payload, dict) else body


@dataclass(frozen=True)
class NfeioEndpoint:
    """One organization's NFe.io webhook URL: what receiving needs to verify and parse its callbacks."""

    organization_id: int
    secret: str

    def verify_callback(self, *, headers: dict, body: bytes) -> bool:
        return _signature_ok(self.secret, headers, body)

    def parse_callback(self, *, headers: dict, body: bytes) -> HookEvent | None:
        payload = json.loads(body)
        if not isinstance(payload, dict):
            raise ValueError("the body is not a JSON object")
        event_type = _event_type(headers, payload)
        if event_type not in FLOW_OF_EVENT:
            return None  # a ping, or an event we do not subscribe to: stored as ignored
        hook_id = headers.get("x-hook-id") or payload.get("id")
        if not hook_id:
            raise ValueError("no X-Hook-Id header")
        return HookEvent(event_id=str(hook_id), event_type=event_type)


# A provider posts many times a second: the endpoint (secret decrypted) is kept this long per process.
ENDPOINT_SECONDS = 5.0
_endpoints: dict[str, tuple[float, NfeioEndpoint]] = {}


def resolve(token: str) -> NfeioEndpoint | None:
    cached = _endpoints.get(token)
    if cached is not None and time.monotonic() - cached[0] < ENDPOINT_SECONDS:
        return cached[1]
    config = FiscalSettings.objects.filter(callback_token=token).first()
    if config is None:
        _endpoints.pop(token, None)
        return None
    if len(_endpoints) > 10_000:
        _endpoints.clear()
    endpoint = NfeioEndpoint(organization_id=config.organization_id,
                             secret=config.credentials.get("webhook_secret", ""))
    _endpoints[token] = (time.monotonic(), endpoint)
    return endpoint


def _parsed(callback) -> tuple[str, nfeio.NoteAnswer] | Exception:
    try:
        body = json.loads(bytes(callback.body))
        document = _document(body)
        answer = nfeio.note_answer(document)
    except (ValueError, TypeError, AttributeError) as exc:
        return CallbackNotApplicable(f"could not parse the callback: {type(exc).__name__}: {exc}")
    event_type = callback.event_type or _event_type(callback.headers, body)
    if not answer.flow_status and FLOW_OF_EVENT.get(event_type):
        answer.flow_status = FLOW_OF_EVENT[event_type]
    return event_type, answer


def apply_callbacks(callbacks) -> dict:
    """Apply stored NFe.io callbacks (inside processing's transaction): their notes are found and locked
    together, then each moves by services.apply_answer."""
    parsed = {c.pk: _parsed(c) for c in callbacks}
    wanted = [(c, p[1]) for c in callbacks if not isinstance(p := parsed[c.pk], Exception)]
    by_id, by_external = Q(pk__in=[]), Q(pk__in=[])
    for callback, answer in wanted:
        if answer.nfeio_id:
            by_id |= Q(organization_id=callback.organization_id, nfeio_id=answer.nfeio_id)
        if answer.external_id:
            by_external |= Q(organization_id=callback.organization_id,
                             public_id=_RETRY_SUFFIX.sub("", answer.external_id))
    notes = list(ServiceInvoice.objects.select_for_update().filter(by_id | by_external)
                 .select_related("organization", "invoice", "account").order_by("pk")) if wanted else []
    note_by_id = {(n.organization_id, n.nfeio_id): n for n in notes if n.nfeio_id}
    note_by_public = {(n.organization_id, n.public_id): n for n in notes}
    changes = services.Changes()
    outcomes: dict = {}
    for callback in callbacks:
        if isinstance(parsed[callback.pk], Exception):
            outcomes[callback.pk] = parsed[callback.pk]
            continue
        event_type, answer = parsed[callback.pk]
        note = (note_by_id.get((callback.organization_id, answer.nfeio_id))
                or note_by_public.get((callback.organization_id, _RETRY_SUFFIX.sub("", answer.external_id))))
        if note is None:
            outcomes[callback.pk] = NoteNotFound(
                f"no service invoice for NFe.io note {answer.nfeio_id or '-'} (external id "
                f"{answer.external_id or '-'}) yet")
            continue
        if answer.environment and answer.environment != note.environment:
            outcomes[callback.pk] = ("ignored", [{"note": f"a {answer.environment} event for a {note.environment} "
                                                          f"organization: ignored", "service_invoice": note.public_id}])
            continue
        what = services.apply_answer(note=note, answer=answer, changes=changes, via=f"callback {event_type}")
        outcomes[callback.pk] = ("processed", [{"service_invoice": note.public_id, "change": what}])
    changes.write()
    return outcomes


register_inbound_provider(InboundProvider(name=PROVIDER, resolve=resolve, apply=apply_callbacks))
