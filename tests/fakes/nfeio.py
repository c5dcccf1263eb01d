"""A fake of NFe.io's NFS-e API (providers.md §3) on loopback, for the nfe tests and bench/nfse.py.

* `POST /v1/companies/{cid}/serviceinvoices` answers 202 + Location with the note in
  `WaitingCalculateTaxes`; the note moves on over time: once `issue_delay` seconds have passed, the next
  read of it (or `advance()`) settles it `Issued` (number, checkCode, a 50-digit accessKey) or
  `IssueFailed` with the city hall's message (`reject_service_codes`, `reject_next`).
* `externalId` is unique per company: a repeat is `400 "service invoice with external id (X) already
  exists"`; `GET .../external/{externalId}` finds a note (404 for `index_lag` seconds after creation).
* Scripted faults for the next issue request (`fail_next`): `500_after_create` (NFe.io's 500 that still
  created the note), `timeout_after_create`, `500`, `429` (with `Retry-After`), `timeout`.
* `DELETE .../{id}` answers 202 with `WaitingSendCancel`; `advance()` settles it `Cancelled` (or
  `CancelFailed` while `cancel_fails`).
* Account webhooks (`/v2/webhooks`, the `webHook` wrapper, a ping on create that must get a 2xx):
  settling a note POSTs `service_invoice.*` events signed `X-Hub-Signature: sha1=<UPPER HEX HMAC-SHA1>`,
  with `X-Hook-Id` (stable across redeliveries), `X-Hook-Event`, `X-Hook-Attempts`, `Content-MD5`, body
  `{"payload": {note}}`; redelivered on any non-2xx. `partial_events` sends fail/cancel events with the
  status fields only, as NFe.io may.
* The API key is accepted in all four forms the clients use: `Authorization: <key>`,
  `Authorization: Basic <key>`, `X-NFE-APIKEY`, `?apikey=`.
"""

import base64
import hashlib
import hmac
import json
import re
import time
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.fakes.http_fake import Answer, HttpFake, Request

ISSUE_FAULTS = {"500_after_create", "timeout_after_create", "500", "429", "timeout"}
_NOTE = re.compile(r"^/v1/companies/([^/]+)/serviceinvoices(?:/(external)/([^/]+)|/([^/]+))?$")


class FakeNfeio(HttpFake):
    FAULTS = ISSUE_FAULTS

    def __init__(self, api_key: str = "nfeio-fake-key-0001", *, company_id: str = "company0001",
                 environment: str = "Development", issue_delay: float = 0.0, index_lag: float = 0.0,
                 fault_delay: float = 1.5, webhook_max_retries: int = 3):
        super().__init__(fault_delay=fault_delay)
        self.api_key = api_key
        self.companies: dict[str, str] = {company_id: environment}  # company id -> environment
        self.company_id = company_id
        self.issue_delay, self.index_lag = issue_delay, index_lag
        self.notes: dict[str, dict] = {}  # NFe.io id -> note
        self.by_external: dict[tuple[str, str], str] = {}  # (company, externalId) -> NFe.io id
        self.created_at: dict[str, float] = {}  # NFe.io id -> monotonic creation time
        self.reject_service_codes: dict[str, str] = {}  # cityServiceCode -> the city hall's message
        self.rejections: deque[str] = deque()
        self.cancel_fails = False
        self.partial_events = False
        self.retry_after = 2
        self.webhooks: dict[str, dict] = {}  # id -> {uri, secret, filters, status}
        self.webhook_max_retries = webhook_max_retries
        self.deliveries: list[dict] = []
        self.pending_events: deque[tuple[str, dict]] = deque()  # (event type, note) not yet delivered
        self.auto_deliver = False  # advance() delivers to the account webhooks at once when set
        self._numbers = 0

    # --- scripting and inspection ---

    @property
    def url(self) -> str:
        return self.origin

    def reject_next(self, message: str, count: int = 1) -> None:
        with self.lock:
            self.rejections.extend([message] * count)

    def notes_for(self, external_id: str) -> int:
        """How many notes exist for `external_id` (the fake's own count: never more than one)."""
        with self.lock:
            return sum(1 for n in self.notes.values() if n["externalId"] == external_id)

    def issue_requests(self) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.method == "POST" and r.path.endswith("/serviceinvoices")]

    def note(self, nfeio_id: str) -> dict:
        with self.lock:
            return json.loads(json.dumps(self.notes[nfeio_id]))

    def advance(self, *, deliver: bool | None = None) -> int:
        """Settle every note whose time has come (issue and cancel); returns how many moved."""
        moved = 0
        with self.lock:
            for nfeio_id in list(self.notes):
                moved += self._settle(nfeio_id, force=True)
        if deliver if deliver is not None else self.auto_deliver:
            self.deliver_pending()
        return moved

    # --- the note lifecycle ---

    def _due(self, nfeio_id: str) -> bool:
        return time.monotonic() - self.created_at[nfeio_id] >= self.issue_delay

    def _settle(self, nfeio_id: str, *, force: bool = False) -> int:
        note = self.notes[nfeio_id]
        flow = note["flowStatus"]
        if flow.startswith("Waiting") and flow != "WaitingSendCancel" and self._due(nfeio_id):
            rejection = self.reject_service_codes.get(note["cityServiceCode"]) or (
                self.rejections.popleft() if self.rejections else "")
            if rejection:
                note.update(flowStatus="IssueFailed", flowMessage=rejection, status="Error", number=0)
                self._event("service_invoice.issued_error", note)
            else:
                self._numbers += 1
                note.update(flowStatus="Issued", flowMessage="", status="Issued", number=2026000000 + self._numbers,
                            checkCode=f"{self._numbers:04X}-{nfeio_id[:4].upper()}",
                            accessKey=f"{self._numbers:050d}", issuedOn=self._now_text())
                self._event("service_invoice.issued_successfully", note)
            return 1
        if flow == "WaitingSendCancel" and force:
            if self.cancel_fails:
                note.update(flowStatus="CancelFailed", flowMessage="Prazo de cancelamento expirado")
                self._event("service_invoice.cancelled_error", note)
            else:
                note.update(flowStatus="Cancelled", status="Cancelled", cancelledOn=self._now_text())
                self._event("service_invoice.cancelled_successfully", note)
            return 1
        return 0

    def _event(self, event_type: str, note: dict) -> None:
        document = json.loads(json.dumps(note))
        if self.partial_events and event_type != "service_invoice.issued_successfully":
            document = {k: document[k] for k in ("id", "flowStatus", "flowMessage") if k in document}
        self.pending_events.append((event_type, document))

    @staticmethod
    def _now_text() -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S-03:00", time.gmtime(time.time() - 3 * 3600))

    # --- webhooks ---

    def sign(self, secret: str, body: bytes) -> str:
        return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest().upper()

    def hook_request(self, event_type: str, document: dict, secret: str, *, hook_id: str | None = None,
                     attempt: int = 0, envelope: str = "payload") -> tuple[bytes, dict]:
        body = json.dumps({"payload": document} if envelope == "payload" else
                          {"action": event_type, "payload": document}).encode()
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "HookShoot/2.0",
                   "X-Hub-Signature": self.sign(secret, body), "X-Hook-Id": hook_id or uuid.uuid4().hex,
                   "X-Hook-Event": event_type, "X-Hook-Attempts": str(attempt),
                   "Content-MD5": base64.b64encode(hashlib.md5(body).digest()).decode()}
        return body, headers

    def take_events(self) -> list[tuple[str, dict]]:
        """The events settled notes produced and nobody delivered yet (tests post them themselves)."""
        with self.lock:
            events = list(self.pending_events)
            self.pending_events.clear()
        return events

    def deliver_pending(self, *, concurrency: int = 1, client: httpx.Client | None = None) -> list[int | None]:
        """POST every event not yet delivered to every active account webhook (redelivering on non-2xx)."""
        with self.lock:
            events = list(self.pending_events)
            self.pending_events.clear()
            hooks = [h for h in self.webhooks.values() if h["status"] == "Active"]
        jobs = [(event_type, document, hook) for event_type, document in events for hook in hooks
                if not hook["filters"] or event_type in hook["filters"]]
        own = client is None
        client = client or httpx.Client(timeout=10.0)
        try:
            if concurrency <= 1:
                return [self._deliver(client, *job) for job in jobs]
            with ThreadPoolExecutor(concurrency) as pool:
                return list(pool.map(lambda job: self._deliver(client, *job), jobs))
        finally:
            if own:
                client.close()

    def _deliver(self, client: httpx.Client, event_type: str, document: dict, hook: dict) -> int | None:
        hook_id = uuid.uuid4().hex
        status = None
        for attempt in range(1 + self.webhook_max_retries):
            body, headers = self.hook_request(event_type, document, hook["secret"], hook_id=hook_id, attempt=attempt)
            try:
                status = client.post(hook["uri"], content=body, headers=headers).status_code
            except httpx.HTTPError:
                status = None
            with self.lock:
                self.deliveries.append({"event": event_type, "hook_id": hook_id, "status": status,
                                        "attempt": attempt})
            if status is not None and 200 <= status < 300:
                break
        return status

    # --- the API ---

    def _authorized(self, request: Request) -> bool:
        authorization = request.headers.get("authorization", "")
        given = {authorization, authorization.removeprefix("Basic ").strip(), request.headers.get("x-nfe-apikey", ""),
                 request.query.get("apikey", "")}
        return self.api_key in given

    def route(self, request: Request) -> Answer:
        if not self._authorized(request):
            return Answer(401, {"message": "Unauthorized: invalid API key"})
        if request.path.startswith("/v2/webhooks"):
            return self._webhooks(request)
        match = _NOTE.match(request.path)
        if not match:
            return Answer(404, {"message": "not found"})
        company = next((c for c in self.companies if c.lower() == match.group(1)), None)
        if company is None:
            return Answer(404, {"message": "company not found"})
        if match.group(2):  # /external/{externalId}
            return self._by_external(company, match.group(3))
        nfeio_id = match.group(4)
        if nfeio_id is None:
            if request.method == "POST":
                return self._issue(company, request)
            return Answer(405, {"message": "method not allowed"})
        with self.lock:
            note = self.notes.get(nfeio_id)
            if note is None or note["_company"] != company:
                return Answer(404, {"message": "service invoice not found"})
            if request.method == "GET":
                self._settle(nfeio_id)
                return Answer(200, self._public(note))
            if request.method == "DELETE":
                if note["flowStatus"] != "Issued":
                    return Answer(400, f"service invoice ({nfeio_id}) can not be cancelled in {note['flowStatus']}")
                note.update(flowStatus="WaitingSendCancel")
                return Answer(202, self._public(note),
                              headers={"Location": f"/v1/companies/{company}/serviceinvoices/{nfeio_id}"})
        return Answer(405, {"message": "method not allowed"})

    @staticmethod
    def _public(note: dict) -> dict:
        return {k: v for k, v in note.items() if not k.startswith("_")}

    def _by_external(self, company: str, external_id: str) -> Answer:
        with self.lock:
            nfeio_id = self.by_external.get((company, external_id.lower()))  # HttpFake lower-cases paths
            if nfeio_id is None or time.monotonic() - self.created_at[nfeio_id] < self.index_lag:
                return Answer(404, {"message": "service invoice not found"})
            self._settle(nfeio_id)
            return Answer(200, self._public(self.notes[nfeio_id]))

    def _issue(self, company: str, request: Request) -> Answer:
        try:
            body = request.json()
        except ValueError:
            return Answer(400, {"message": "invalid JSON"})
        problem = _invalid(body)
        if problem:
            return Answer(400, {"message": problem})
        fault = self.take_fault()
        if fault == "429":
            return Answer(429, {"message": "Too many requests"}, headers={"Retry-After": str(self.retry_after)})
        if fault == "500":
            return Answer(500, {"message": "Internal Server Error"})
        if fault == "timeout":
            return Answer(500, hang=True)
        external_id = str(body.get("externalId") or "")
        with self.lock:
            if external_id and (company, external_id.lower()) in self.by_external:
                return Answer(400, f"service invoice with external id ({external_id}) already exists")
            nfeio_id = uuid.uuid4().hex[:24]
            note = {"id": nfeio_id, "_company": company, "environment": self.companies[company],
                    "flowStatus": "WaitingCalculateTaxes", "flowMessage": "", "status": "Created",
                    "externalId": external_id, "number": 0, "checkCode": "", "batchNumber": 0,
                    "cityServiceCode": body["cityServiceCode"], "description": body["description"],
                    "servicesAmount": body["servicesAmount"], "borrower": body["borrower"],
                    "createdOn": self._now_text(), "modifiedOn": self._now_text()}
            self.notes[nfeio_id] = note
            self.created_at[nfeio_id] = time.monotonic()
            if external_id:
                self.by_external[(company, external_id.lower())] = nfeio_id
            public = self._public(note)
        if fault == "500_after_create":
            return Answer(500, {"message": "Internal Server Error"})
        if fault == "timeout_after_create":
            return Answer(500, hang=True)
        return Answer(202, public, headers={"Location": f"/v1/companies/{company}/serviceinvoices/{nfeio_id}"})

    def _webhooks(self, request: Request) -> Answer:
        rest = request.path.removeprefix("/v2/webhooks").strip("/")
        if request.method == "POST" and not rest:
            body = request.json() or {}
            if "webHook" not in body:
                return Answer(400, "missing required properties: 'webHook'")
            hook = body["webHook"]
            if not hook.get("uri"):
                return Answer(400, "The Uri field is required")
            secret = str(hook.get("secret") or "")
            if not 32 <= len(secret) <= 64:
                return Answer(400, "The secret must have between 32 and 64 characters")
            hook_id = uuid.uuid4().hex
            ping = json.dumps({"action": "ping", "webHook": {"Id": hook_id, "Uri": hook["uri"]}}).encode()
            try:
                status = httpx.post(hook["uri"], content=ping, timeout=5.0, headers={
                    "Content-Type": "application/json; charset=utf-8", "X-Hub-Signature": self.sign(secret, ping),
                    "X-Hook-Id": uuid.uuid4().hex, "X-Hook-Event": "ping", "User-Agent": "HookShoot/2.0"}).status_code
            except httpx.HTTPError:
                status = None
            if status is None or not 200 <= status < 300:
                return Answer(400, {"errors": [{"code": 400, "message": f"the webhook URI answered {status}"}]})
            with self.lock:
                self.webhooks[hook_id] = {"id": hook_id, "uri": hook["uri"], "secret": secret,
                                          "filters": list(hook.get("filters") or []),
                                          "status": hook.get("status", "Active")}
            return Answer(201, {"webHook": {**self.webhooks[hook_id], "secret": secret}})
        if request.method == "GET" and not rest:
            with self.lock:
                return Answer(200, {"webHooks": [{k: v for k, v in h.items() if k != "secret"}
                                                 for h in self.webhooks.values()]})
        if request.method == "DELETE":
            with self.lock:
                if rest:
                    self.webhooks.pop(rest, None)
                else:
                    self.webhooks.clear()
            return Answer(200, None)
        return Answer(404, {"message": "not found"})

    def add_webhook(self, uri: str, secret: str, filters: list[str] | None = None) -> None:
        """Register an account webhook directly (no ping): for tests whose receiver is the Django test client."""
        with self.lock:
            hook_id = uuid.uuid4().hex
            self.webhooks[hook_id] = {"id": hook_id, "uri": uri, "secret": secret, "filters": filters or [],
                                      "status": "Active"}


def _invalid(body) -> str:
    if not isinstance(body, dict):
        return "the body must be a JSON object"
    for name in ("cityServiceCode", "description"):
        if not isinstance(body.get(name), str) or not body[name]:
            return f"{name} is required"
    amount = body.get("servicesAmount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount <= 0:
        return "servicesAmount must be a positive number (reais)"
    if round(amount, 2) != amount:
        return "servicesAmount has more than two decimals"
    borrower = body.get("borrower")
    if not isinstance(borrower, dict):
        return "borrower is required"
    tax_number = borrower.get("federalTaxNumber")
    if isinstance(tax_number, bool) or not isinstance(tax_number, (int, str)) or not str(tax_number):
        return "borrower.federalTaxNumber is required"
    address = borrower.get("address") or {}
    if not (address.get("city") or {}).get("code"):
        return "borrower.address.city.code is required"
    return ""
