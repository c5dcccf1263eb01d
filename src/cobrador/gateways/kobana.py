"""Kobana adapter: boletos through API v1 (`/v1/bank_billets`), PIX through API v2 (`/v2/charge/pix`).

Protocol (shared/reference/providers.md §2): `Authorization: Bearer <api_token>`; amounts in decimal
reais (converted here from integer cents, half-up); `X-Idempotency-Key` on every write; v1 answers are
bare objects, v2 answers are wrapped as `{"status": ..., "data": ...}`. Kobana has no cards.

A PIX is created synchronously but registered at the bank asynchronously: the creation answer usually
has `qrcode.emv = null`; the code arrives with the `pix.register.confirmed` / `pix.db.updated` callbacks
(their `raw["object"]`) or a later `fetch_charge`. Kobana allows only 60 GETs per hour per user: rely on
callbacks, fetch sparingly.

Credentials: `{"api_token", "webhook_secret", "pix_account_uid"}` (`pix_account_uid` may also be an
option). The host follows the organization's mode (the sandbox host in test mode);
COBRADOR_KOBANA_BASE_URL points an installation elsewhere (the tests' fake), never a tenant's options.
Options: `timeout_seconds` (default 10), `boleto` (extra v1 fields merged into every bank billet, e.g. fine and
interest), `boleto_days_to_due` (default 3, when a request has no due date).
"""

import hashlib
import hmac
import json
import logging
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import httpx
from django.conf import settings

from cobrador.core import clock
from cobrador.core.money import from_decimal, to_decimal
from cobrador.customers.documents import CNPJ, CPF, format_document
from cobrador.gateways.base import CallbackEvent, ChargeRequest, ChargeResult, GatewayError
from cobrador.gateways.pagarme import http_client

logger = logging.getLogger(__name__)

LIVE_BASE_URL = "https://api.kobana.com.br"
SANDBOX_BASE_URL = "https://api-sandbox.kobana.com.br"
DEFAULT_TIMEOUT = 10.0
BRAZIL = ZoneInfo("America/Sao_Paulo")

BILLET_STATUSES = {
    "generating": "pending", "draft": "pending", "opened": "pending", "overdue": "pending",
    "blocked": "pending", "paid": "succeeded", "canceled": "canceled", "generation_failed": "failed",
    "validation_failed": "failed", "chargeback": "refunded",
}
PIX_STATUSES = {"opened": "pending", "overdue": "pending", "paid": "succeeded", "canceled": "canceled",
                "generation_failed": "failed"}
# Events that say what the charge is now. Other bank_billet.* / pix.* events are stored and change
# nothing (status None); events of other families are not ours (parse_callback answers None).
EVENT_STATUSES = {
    "bank_billet.paid": "succeeded", "bank_billet.canceled": "canceled", "bank_billet.cancel.confirmed": "canceled",
    "bank_billet.rejected": "failed", "bank_billet.register.failed": "failed",
    "pix.paid": "succeeded", "pix.cancel.confirmed": "canceled", "pix.register.failed": "failed",
    "pix.register.confirmed": "pending", "pix.db.updated": None,
}


class KobanaGateway:
    provider = "kobana"

    def __init__(self, config, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        options = config.options or {}
        self.credentials = config.credentials or {}
        base_url = settings.KOBANA_BASE_URL
        if not base_url:
            base_url = LIVE_BASE_URL if config.organization.mode == "live" else SANDBOX_BASE_URL
        self.base_url = base_url.rstrip("/")
        self.timeout = float(options.get("timeout_seconds") or DEFAULT_TIMEOUT)
        self.options = options
        self.transport = transport

    # --- HTTP ------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
              idempotency_key: str = "") -> tuple[int, object] | None:
        """(status, JSON or None) of a 2xx; None when the outcome is unknown; GatewayError when refused."""
        token = self.credentials.get("api_token", "")
        if not token:
            raise GatewayError("the Kobana configuration has no api_token")
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json",
                   "User-Agent": "cobrador (billing automation)"}
        if idempotency_key:
            headers["X-Idempotency-Key"] = idempotency_key[:255]
        try:
            response = http_client(self.timeout, self.transport).request(
                method, self.base_url + path, json=body, params=params, headers=headers)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise GatewayError(f"could not connect to Kobana: {type(exc).__name__}") from None
        except httpx.TransportError as exc:
            logger.warning("kobana %s %s: no answer (%s)", method, path, type(exc).__name__)
            return None
        if response.status_code >= 500:
            logger.warning("kobana %s %s: HTTP %s", method, path, response.status_code)
            return None
        if response.status_code >= 400:
            raise GatewayError(f"Kobana refused {method} {path}: HTTP {response.status_code}: "
                               f"{_error_message(response)}")
        if not response.content:
            return response.status_code, None
        try:
            return response.status_code, response.json()
        except ValueError:
            return response.status_code, None

    # --- charges ---------------------------------------------------------------------------------

    def charge_card(self, request: ChargeRequest) -> ChargeResult:
        raise GatewayError("Kobana does not charge cards: configure another provider for the card method")

    def issue_boleto(self, request: ChargeRequest) -> ChargeResult:
        if request.amount <= 0:
            raise GatewayError("amount must be positive")
        customer, address = request.customer, request.customer.address or {}
        due = request.due_date or (clock.now().astimezone(BRAZIL).date()
                                   + timedelta(days=int(self.options.get("boleto_days_to_due", 3))))
        body = {
            "amount": _reais(request.amount, request.currency),
            "expire_at": due.isoformat(),
            "description": request.description[:255] or request.reference,
            "customer_person_name": (customer.name or customer.reference)[:120],
            "customer_cnpj_cpf": _masked(customer.document, customer.document_type),
            "customer_email": customer.email or None,
            "customer_zipcode": "".join(ch for ch in address.get("zipcode", "") if ch.isdigit()) or None,
            "customer_address": address.get("street") or None,
            "customer_address_number": address.get("number") or None,
            "customer_address_complement": address.get("complement") or None,
            "customer_neighborhood": address.get("neighborhood") or None,
            "customer_city_name": address.get("city") or None,
            "customer_state": address.get("state") or None,
            "external_id": request.reference,
            "custom_data": {**{k: str(v) for k, v in request.metadata.items()}, "reference": request.reference},
            **(self.options.get("boleto") or {}),
        }
        body = {k: v for k, v in body.items() if v is not None}
        answer = self._send("POST", "/v1/bank_billets", body=body, idempotency_key=request.idempotency_key)
        if answer is None:
            return _unknown()
        return billet_result(_unwrap(answer[1]))

    def issue_pix(self, request: ChargeRequest) -> ChargeResult:
        if request.amount <= 0:
            raise GatewayError("amount must be positive")
        pix_account_uid = self.credentials.get("pix_account_uid") or self.options.get("pix_account_uid")
        if not pix_account_uid:
            raise GatewayError("the Kobana configuration has no pix_account_uid")
        customer = request.customer
        expires_at = request.expires_at or clock.now() + timedelta(days=1)
        body = {
            "amount": _reais(request.amount, request.currency),
            "pix_account_uid": pix_account_uid,
            "expire_at": expires_at.astimezone(BRAZIL).isoformat(timespec="seconds"),
            "registration_kind": "instant",
            "message": request.description[:140] or None,
            "external_id": request.reference,
            "custom_data": {**{k: str(v) for k, v in request.metadata.items()}, "reference": request.reference},
        }
        if customer.document and customer.name:
            body["payer"] = {"document_number": _masked(customer.document, customer.document_type),
                             "name": customer.name, **({"email": customer.email} if customer.email else {})}
        body = {k: v for k, v in body.items() if v is not None}
        answer = self._send("POST", "/v2/charge/pix", body=body, idempotency_key=request.idempotency_key)
        if answer is None:
            return _unknown()
        return pix_result(_unwrap(answer[1]))

    def fetch_charge(self, *, method, provider_charge_id: str) -> ChargeResult:
        path = _path(method, provider_charge_id)
        answer = self._send("GET", path)
        if answer is None:
            return ChargeResult(status="unknown", provider_charge_id=provider_charge_id)
        data = _unwrap(answer[1])
        return billet_result(data) if method == "bank_slip" else pix_result(data)

    def find_charge(self, *, method, reference: str, idempotency_key: str) -> ChargeResult | None:
        """Lists by `external_id` and keeps only exact matches (whether Kobana filters the list by
        external_id is unconfirmed, so the client filters too)."""
        path = "/v1/bank_billets" if method == "bank_slip" else "/v2/charge/pix"
        answer = self._send("GET", path, params={"external_id": reference, "per_page": 50})
        if answer is None:
            return ChargeResult(status="unknown")
        rows = _unwrap(answer[1]) or []
        if isinstance(rows, dict):  # tolerate {"data": [...]} / {"items": [...]}
            rows = rows.get("items") or rows.get("data") or []
        matches = [r for r in rows if isinstance(r, dict) and r.get("external_id") == reference]
        if not matches:
            return None
        latest = max(matches, key=lambda r: (r.get("created_at") or "", str(r.get("id") or "")))
        return billet_result(latest) if method == "bank_slip" else pix_result(latest)

    def cancel_charge(self, *, method, provider_charge_id: str, idempotency_key: str) -> ChargeResult:
        """Cancellation at the bank is asynchronous: an accepted cancel answers `canceled`; the
        `*.cancel.confirmed` callback confirms it."""
        answer = self._send("PUT", _path(method, provider_charge_id) + "/cancel",
                            body={"cancellation_reason": 1} if method == "bank_slip" else None,
                            idempotency_key=idempotency_key)
        if answer is None:
            return ChargeResult(status="unknown", provider_charge_id=provider_charge_id)
        return ChargeResult(status="canceled", provider_charge_id=provider_charge_id,
                            raw=answer[1] if isinstance(answer[1], dict) else {})

    def refund(self, *, method, provider_charge_id: str, amount: int, idempotency_key: str) -> ChargeResult:
        raise GatewayError("Kobana offers no refund of a paid boleto or PIX through its API: refund the payer "
                           "directly")

    # --- callbacks -------------------------------------------------------------------------------

    def verify_callback(self, *, headers: dict[str, str], body: bytes) -> bool:
        secret = self.credentials.get("webhook_secret", "")
        given = headers.get("x-kobana-signature", "").strip()
        if not secret or not given.lower().startswith("sha256="):
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given[len("sha256="):].lower().encode(), expected.encode())

    def parse_callback(self, *, headers: dict[str, str], body: bytes) -> CallbackEvent | None:
        payload = json.loads(body)
        event_type = headers.get("x-kobana-event") or payload.get("event_code") or ""
        if not (event_type.startswith("bank_billet.") or event_type.startswith("pix.")):
            return None
        obj = payload.get("object") or {}
        # Command events (*.register.*, *.cancel.*, *.update.*) carry the command; the resource is inside.
        resource = (obj.get("bank_billet") or obj.get("pix") or obj) if "operation" in obj else obj
        is_billet = event_type.startswith("bank_billet.")
        charge_id = str(resource.get("id") or "") if is_billet else str(resource.get("uid") or "")
        event_id = headers.get("x-kobana-delivery-id") or hashlib.sha256(json.dumps(
            [event_type, resource.get("uid") or resource.get("id"), payload.get("changes")],
            sort_keys=True, default=str).encode()).hexdigest()
        if event_type in EVENT_STATUSES:
            status = EVENT_STATUSES[event_type]
            if status is None and resource.get("status"):
                status = (BILLET_STATUSES if is_billet else PIX_STATUSES).get(resource["status"])
        else:
            status = None
        paid_amount = resource.get("paid_amount")
        return CallbackEvent(
            event_id=event_id, event_type=event_type, provider_charge_id=charge_id,
            reference=resource.get("external_id") or (resource.get("custom_data") or {}).get("reference", ""),
            status=status,
            amount_paid=from_decimal(paid_amount) if paid_amount not in (None, "") else 0,
            paid_at=_paid_at(resource.get("paid_at")), raw=payload)


# --- mapping Kobana objects ----------------------------------------------------------------------


def billet_result(billet: dict) -> ChargeResult:
    status = BILLET_STATUSES.get(billet.get("status") or "", "pending")
    paid_amount = billet.get("paid_amount")
    result = ChargeResult(
        status=status, provider_charge_id=str(billet.get("id") or ""),
        amount_paid=from_decimal(paid_amount) if paid_amount not in (None, "") and status != "pending" else 0,
        paid_at=_paid_at(billet.get("paid_at")), boleto_url=billet.get("url") or "",
        boleto_barcode=billet.get("barcode") or "", boleto_line=billet.get("line") or "",
        pix_copy_paste=billet.get("pix_qrcode") or "",  # a hybrid boleto is also payable by PIX
        expires_at=_end_of_day(billet.get("expire_at")), raw=billet)
    if status == "failed":
        result.failure_code = billet.get("status") or "failed"
        result.failure_message = "; ".join(str(e) for e in billet.get("errors") or []) if isinstance(
            billet.get("errors"), list) else ""
    return result


def pix_result(pix: dict) -> ChargeResult:
    status = PIX_STATUSES.get(pix.get("status") or "", "pending")
    paid_amount = pix.get("paid_amount")
    qrcode = pix.get("qrcode") or {}
    return ChargeResult(
        status=status, provider_charge_id=str(pix.get("uid") or ""),
        amount_paid=from_decimal(paid_amount) if paid_amount not in (None, "") and status != "pending" else 0,
        paid_at=_paid_at(pix.get("paid_at")), pix_copy_paste=qrcode.get("emv") or "",
        pix_qr_code_url=pix.get("url") or "", expires_at=_paid_at(pix.get("expire_at")),
        failure_code="generation_failed" if status == "failed" else "", raw=pix)


def _path(method: str, provider_charge_id: str) -> str:
    if method == "bank_slip":
        return f"/v1/bank_billets/{provider_charge_id}"
    if method == "pix":
        return f"/v2/charge/pix/{provider_charge_id}"
    raise GatewayError("Kobana has no cards")


def _unwrap(data):
    """v2 answers are `{"status": 201, "data": {...}}`; v1 answers are the object itself."""
    if isinstance(data, dict) and "data" in data and isinstance(data.get("status"), int):
        return data["data"]
    return data


def _unknown() -> ChargeResult:
    return ChargeResult(status="unknown", failure_code="provider_unreachable",
                        failure_message="Kobana did not answer in time or answered 5xx")


def _reais(amount: int, currency: str) -> float:
    if currency != "BRL":
        raise GatewayError("Kobana charges only BRL")
    return float(to_decimal(amount, currency))  # two decimals: exact as a JSON number


def _masked(document: str, document_type: str) -> str:
    document = "".join(ch for ch in document or "" if ch.isalnum()).upper()
    kind = document_type or (CPF if len(document) == 11 else CNPJ if len(document) == 14 else "")
    return format_document(document, kind) if kind in (CPF, CNPJ) else document


def _paid_at(value) -> datetime | None:
    """Kobana sends dates ("2026-06-16") for boletos and datetimes for PIX; a date is read as midnight in
    Brazil."""
    if not value:
        return None
    text = str(value)
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0), tzinfo=BRAZIL).astimezone(UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=BRAZIL)).astimezone(UTC)


def _end_of_day(value) -> datetime | None:
    try:
        day = date.fromisoformat(str(value)[:10]) if value else None
    except ValueError:
        return None
    return datetime.combine(day, time(23, 59, 59), tzinfo=BRAZIL).astimezone(UTC) if day else None


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    errors = body.get("errors") if isinstance(body, dict) else None
    if isinstance(errors, dict):  # v1 validation: {"field": ["message"]}
        return "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                         for k, v in errors.items())[:500]
    if isinstance(errors, list):
        return "; ".join(
            " ".join(str(e.get(k)) for k in ("param", "title", "detail", "code") if isinstance(e, dict) and e.get(k))
            for e in errors)[:500]
    if isinstance(body, dict) and body.get("error"):
        return str(body["error"])[:500]
    return str(body)[:200]
