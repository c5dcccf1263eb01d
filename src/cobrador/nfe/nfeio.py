"""The NFe.io NFS-e client (providers.md §3), behind a small protocol so issuing never sees HTTP.

Amounts cross this boundary as integer minor units and leave as reais (floats, NFe.io's unit). Every
answer about a note becomes a `NoteAnswer`; every failure one of the `NfeioError` kinds, which say what
is known of the outcome:

* `Refused` (400/401/403/404/422): nothing was created; the message is NFe.io's.
* `DuplicateExternalId` (400 "... already exists"): a note with this external id exists; look it up.
* `RateLimited` (429): nothing was created; try again after `retry_after` seconds.
* `Ambiguous` (5xx, 408, timeout, a reset connection): the note may or may not exist. NFe.io's 500 can
  still have created it: the caller asks by external id, never issues again blindly.
"""

import json
import threading
import time
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

import httpx
from django.conf import settings

from cobrador.core.ssrf import guarded_transport

TERMINAL_FLOW = {"Issued", "IssueFailed", "Cancelled", "CancelFailed"}


@dataclass
class NoteAnswer:
    """What NFe.io says a note is now. Empty strings: the answer did not carry the field."""

    nfeio_id: str
    flow_status: str = ""
    flow_message: str = ""
    external_id: str = ""
    environment: str = ""
    number: str = ""
    check_code: str = ""
    access_key: str = ""
    raw: dict = field(default_factory=dict, repr=False)
    present: frozenset = frozenset()  # the document's keys: a partial event merges only these


class NfeioError(Exception):
    def __init__(self, message: str, *, status: int | None = None, retry_after: float = 0.0):
        super().__init__(message)
        self.message, self.status, self.retry_after = message, status, retry_after


class Refused(NfeioError):
    pass


class DuplicateExternalId(NfeioError):
    pass


class RateLimited(NfeioError):
    pass


class Ambiguous(NfeioError):
    pass


class NfeioClient(Protocol):
    def issue(self, *, company_id: str, body: dict) -> NoteAnswer: ...

    def fetch(self, *, company_id: str, nfeio_id: str) -> NoteAnswer: ...

    def find_by_external_id(self, *, company_id: str, external_id: str) -> NoteAnswer | None: ...

    def cancel(self, *, company_id: str, nfeio_id: str) -> NoteAnswer: ...


def reais(amount: int) -> float:
    """Minor units to NFe.io's reais (a float with two decimals)."""
    return float((Decimal(amount) / 100).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


def note_answer(document: dict) -> NoteAnswer:
    """A note document (an API answer or a webhook's payload) as a NoteAnswer."""
    number = document.get("number")
    return NoteAnswer(
        nfeio_id=str(document.get("id") or ""),
        flow_status=str(document.get("flowStatus") or ""),
        flow_message=str(document.get("flowMessage") or ""),
        external_id=str(document.get("externalId") or ""),
        environment=str(document.get("environment") or ""),
        number=str(number) if number not in (None, 0, "0", "") else "",
        check_code=str(document.get("checkCode") or ""),
        access_key=str(document.get("accessKey") or document.get("nationalAccessKey") or ""),
        raw=document, present=frozenset(document))


def error_message(response: httpx.Response) -> str:
    """NFe.io's error bodies vary: a bare JSON string, {message}, {error}, {detail}, {errors: [{message}]}."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or f"HTTP {response.status_code}"
    if isinstance(body, str):
        return body[:500]
    if isinstance(body, dict):
        for key in ("message", "error", "detail"):
            if isinstance(body.get(key), str):
                return body[key][:500]
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or "")[:500]
    return json.dumps(body)[:500]


def _retry_after(response: httpx.Response) -> float:
    try:
        return max(0.0, float(response.headers.get("retry-after", "")))
    except ValueError:
        return 60.0


_clients_lock = threading.Lock()
_clients: dict[tuple[str, str], httpx.Client] = {}


def _http(base_url: str, api_key: str) -> httpx.Client:
    """One pooled client per (base URL, key) and process: connections are reused across a batch. Every
    connection passes the outbound guard (core/ssrf.py): loopback and private addresses only with
    COBRADOR_PROVIDER_ALLOW_PRIVATE."""
    key = (base_url, api_key)
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            timeout = settings.NFEIO_TIMEOUT
            client = httpx.Client(
                base_url=base_url, timeout=httpx.Timeout(timeout, connect=min(10.0, timeout)),
                headers={"Authorization": api_key, "Accept": "application/json",
                         "User-Agent": "cobrador (+nfs-e)"},
                transport=guarded_transport(
                    allow_private=_allow_private,
                    limits=httpx.Limits(max_connections=32, max_keepalive_connections=32)),
                follow_redirects=False)
            if len(_clients) > 1000:
                _clients.clear()
            _clients[key] = client
        return client


def _allow_private() -> bool:
    return settings.PROVIDER_ALLOW_PRIVATE


class HttpNfeioClient:
    """NFe.io over HTTP: `Authorization: <key>`, JSON bodies, explicit timeouts."""

    def __init__(self, *, api_key: str, base_url: str | None = None):
        self.http = _http((base_url or settings.NFEIO_BASE_URL).rstrip("/"), api_key)
        self.last_status: int | None = None  # the last answer's HTTP status, for the call log

    def _request(self, method: str, path: str, body: dict | None = None) -> httpx.Response:
        self.last_status = None
        try:
            response = self.http.request(method, path, json=body)
        except httpx.TimeoutException as exc:
            raise Ambiguous(f"no answer from NFe.io ({type(exc).__name__})") from exc
        except httpx.TransportError as exc:
            raise Ambiguous(f"the connection to NFe.io failed ({type(exc).__name__})") from exc
        self.last_status = response.status_code
        return response

    def _raise_for(self, response: httpx.Response, *, issuing: bool = False) -> None:
        status = response.status_code
        if status < 300:
            return
        message = error_message(response)
        if status == 429:
            raise RateLimited(message or "too many requests", status=status, retry_after=_retry_after(response))
        if status >= 500 or status == 408:
            raise Ambiguous(message or f"NFe.io answered {status}", status=status)
        if issuing and status in (400, 409) and "already exists" in message.lower():
            raise DuplicateExternalId(message, status=status)
        raise Refused(message or f"NFe.io answered {status}", status=status)

    def _answer(self, response: httpx.Response) -> NoteAnswer:
        try:
            document = response.json()
        except ValueError as exc:
            raise Ambiguous(f"NFe.io answered {response.status_code} without JSON", status=response.status_code) \
                from exc
        if not isinstance(document, dict):
            raise Ambiguous("NFe.io answered with an unexpected body", status=response.status_code)
        answer = note_answer(document)
        if not answer.nfeio_id:  # 202 with only a Location header
            location = response.headers.get("location", "")
            answer.nfeio_id = location.rstrip("/").rsplit("/", 1)[-1] if location else ""
        return answer

    def issue(self, *, company_id: str, body: dict) -> NoteAnswer:
        response = self._request("POST", f"/v1/companies/{company_id}/serviceinvoices", body)
        self._raise_for(response, issuing=True)
        return self._answer(response)

    def fetch(self, *, company_id: str, nfeio_id: str) -> NoteAnswer:
        response = self._request("GET", f"/v1/companies/{company_id}/serviceinvoices/{nfeio_id}")
        self._raise_for(response)
        return self._answer(response)

    def find_by_external_id(self, *, company_id: str, external_id: str) -> NoteAnswer | None:
        response = self._request("GET", f"/v1/companies/{company_id}/serviceinvoices/external/{external_id}")
        if response.status_code == 404:
            return None
        self._raise_for(response)
        return self._answer(response)

    def cancel(self, *, company_id: str, nfeio_id: str) -> NoteAnswer:
        response = self._request("DELETE", f"/v1/companies/{company_id}/serviceinvoices/{nfeio_id}")
        self._raise_for(response)
        if not response.content:
            return NoteAnswer(nfeio_id=nfeio_id, flow_status="WaitingSendCancel")
        return self._answer(response)


def file_url(company_id: str, nfeio_id: str, kind: str) -> str:
    """The PDF or XML of a note at NFe.io (fetched with the organization's key)."""
    return f"{settings.NFEIO_BASE_URL}/v1/companies/{company_id}/serviceinvoices/{nfeio_id}/{kind}"


def timed(call):
    """(result or exception, milliseconds) of `call()`."""
    started = time.monotonic()
    try:
        result = call()
    except NfeioError as exc:
        result = exc
    except Exception as exc:  # noqa: BLE001 - the request may have left: only NFe.io knows
        result = Ambiguous(f"{type(exc).__name__} while calling NFe.io")
    return result, int((time.monotonic() - started) * 1000)
