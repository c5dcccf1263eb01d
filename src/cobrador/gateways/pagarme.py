"""Pagar.me (API v5, "Core API") adapter.

Protocol (see shared/reference/providers.md §1): HTTP Basic with the secret key as username and an empty
password; integer cents; `Idempotency-Key` on every write; `POST /orders` with `closed: true` charges at
once. The body's status decides the outcome, never the HTTP code alone.

Card tokens (a card payment method's `gateway_token`), in order of preference:
* `cus_<id>:card_<id>`: a card stored on a Pagar.me customer (`customer_id` + `credit_card.card_id`);
* `card_<id>`: a stored card id, sent with the customer's data;
* `token_<id>`: a one-time card token from `POST /tokens` (`credit_card.card_token`).

Outcomes: a timeout or a transport error after the request was sent, or a 5xx, is `unknown`; billing
reconciles with `find_charge` (`GET /orders?code=<our reference>`). A connection that never opened, a 4xx
or a 429 is a `GatewayError` (nothing happened). Pending/processing charges are `pending`; fetch later.

Credentials: `{"secret_key": "sk_test_..."}`. Options: `timeout_seconds` (default 10). The API and JWKS
hosts are Pagar.me's (the same for test and live keys); COBRADOR_PAGARME_BASE_URL and
COBRADOR_PAGARME_JWKS_URL point an installation elsewhere (the tests' fake), never a tenant's options.
Every connection goes through the outbound guard (core/ssrf.py).
"""

import base64
import binascii
import json
import logging
import threading
import time
from datetime import datetime

import httpx
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from django.conf import settings

from cobrador.core.ssrf import guarded_transport
from cobrador.gateways.base import CallbackEvent, ChargeRequest, ChargeResult, GatewayError, StoredCard

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.pagar.me/core/v5"
DEFAULT_JWKS_URL = "https://hubapi.pagar.me/.well-known/jwks.json"
DEFAULT_TIMEOUT = 10.0
SIGNATURE_HEADER = "x-webhook-asymmetric-signature"

METHOD_NAMES = {"card": "credit_card", "bank_slip": "boleto", "pix": "pix"}
OUR_METHODS = {v: k for k, v in METHOD_NAMES.items()}

# Acquirer return codes (ABECS) that mean "never retry this card": lost, stolen, invalid, expired,
# blocked, pick-up, not permitted. Anything else that fails is a soft decline.
HARD_DECLINE_CODES = {
    "04": "pick_up_card", "07": "pick_up_card", "14": "invalid_card_number", "15": "invalid_card_number",
    "41": "lost_card", "43": "stolen_card", "46": "account_closed", "54": "expired_card",
    "57": "transaction_not_allowed", "62": "restricted_card", "R0": "stop_payment_order",
    "R1": "revocation_of_authorization", "R3": "revocation_of_all_authorizations",
}
SOFT_DECLINE_CODES = {
    "05": "generic_decline", "51": "insufficient_funds", "61": "withdrawal_limit_exceeded",
    "65": "withdrawal_limit_exceeded", "91": "issuer_unavailable", "96": "processing_error",
    "N7": "incorrect_cvc", "82": "incorrect_cvc", "59": "suspected_fraud", "1A": "authentication_required",
}


_clients: dict[float, httpx.Client] = {}
_clients_lock = threading.Lock()


def http_client(timeout: float, transport: httpx.BaseTransport | None = None) -> httpx.Client:
    """One pooled client per timeout (building a client costs ~0.2 s of TLS setup), its connections
    resolved, checked and pinned by the outbound guard; a test transport gets a client of its own."""
    if transport is not None:
        return httpx.Client(transport=transport, timeout=timeout, follow_redirects=False)
    with _clients_lock:
        client = _clients.get(timeout)
        if client is None:
            client = _clients[timeout] = httpx.Client(
                transport=guarded_transport(allow_private=_allow_private),
                timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)), follow_redirects=False)
        return client


def _allow_private() -> bool:
    return settings.PROVIDER_ALLOW_PRIVATE


class PagarmeGateway:
    provider = "pagarme"

    def __init__(self, config, *, transport: httpx.BaseTransport | None = None):
        self.config = config
        options = config.options or {}
        self.base_url = (settings.PAGARME_BASE_URL or DEFAULT_BASE_URL).rstrip("/")
        self.jwks_url = settings.PAGARME_JWKS_URL or DEFAULT_JWKS_URL
        self.timeout = float(options.get("timeout_seconds") or DEFAULT_TIMEOUT)
        self.transport = transport

    # --- HTTP ------------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, body: dict | None = None, params: dict | None = None,
              idempotency_key: str = "") -> dict | None:
        """The JSON answer of a 2xx; None when the outcome is unknown; GatewayError when refused."""
        secret_key = (self.config.credentials or {}).get("secret_key", "")
        if not secret_key:
            raise GatewayError("the Pagar.me configuration has no secret_key")
        headers = {"Accept": "application/json", "User-Agent": "cobrador"}
        if idempotency_key:
            headers["Idempotency-Key"] = idempotency_key
        try:
            response = http_client(self.timeout, self.transport).request(
                method, self.base_url + path, json=body, params=params, headers=headers, auth=(secret_key, ""))
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise GatewayError(f"could not connect to Pagar.me: {type(exc).__name__}") from None
        except httpx.TransportError as exc:  # sent, but no (complete) answer: the outcome is unknown
            logger.warning("pagarme %s %s: no answer (%s)", method, path, type(exc).__name__)
            return None
        if response.status_code >= 500:
            logger.warning("pagarme %s %s: HTTP %s", method, path, response.status_code)
            return None
        if response.status_code >= 400:
            raise GatewayError(f"Pagar.me refused {method} {path}: HTTP {response.status_code}: "
                               f"{_error_message(response)}")
        try:
            return response.json()
        except ValueError:
            return None

    # --- charges ---------------------------------------------------------------------------------

    def charge_card(self, request: ChargeRequest) -> ChargeResult:
        customer_id, credit_card = _card_payment(request.card_token)
        credit_card.update({"installments": 1, "capture": True, "recurrence": True,
                            "statement_descriptor": (request.metadata.get("statement_descriptor") or "")[:13]
                            or None})
        credit_card = {k: v for k, v in credit_card.items() if v is not None}
        return self._create_order(request, {"payment_method": "credit_card", "credit_card": credit_card},
                                  customer_id=customer_id)

    def issue_boleto(self, request: ChargeRequest) -> ChargeResult:
        boleto = {"instructions": request.description[:256], "document_number": request.reference[-16:],
                  "type": "DM"}
        if request.due_date:
            boleto["due_at"] = f"{request.due_date.isoformat()}T23:59:59-03:00"
        return self._create_order(request, {"payment_method": "boleto", "boleto": boleto})

    def issue_pix(self, request: ChargeRequest) -> ChargeResult:
        pix = {"additional_information": [{"name": "Referência", "value": request.reference}]}
        if request.expires_at:
            pix["expires_at"] = request.expires_at.isoformat()
        else:
            pix["expires_in"] = 86400
        return self._create_order(request, {"payment_method": "pix", "pix": pix})

    def _create_order(self, request: ChargeRequest, payment: dict, customer_id: str = "") -> ChargeResult:
        if request.amount <= 0:
            raise GatewayError("amount must be positive")
        payment["amount"] = request.amount
        body = {
            "code": request.reference,
            "items": [{"amount": request.amount, "description": request.description[:256] or request.reference,
                       "quantity": 1, "code": request.reference}],
            "payments": [payment],
            "metadata": {**{k: str(v) for k, v in request.metadata.items()}, "reference": request.reference},
            "closed": True,
        }
        if customer_id:
            body["customer_id"] = customer_id
        else:
            body["customer"] = _customer(request.customer)
        order = self._send("POST", "/orders", body=body, idempotency_key=request.idempotency_key)
        if order is None:
            return ChargeResult(status="unknown", failure_code="provider_unreachable",
                                failure_message="Pagar.me did not answer in time or answered 5xx")
        return order_result(order, request.method)

    # --- cards tokenized in the customer's browser ----------------------------------------------------

    def tokenize_url(self) -> str:
        """Where the pages' card forms (card update, pay now by card) post the card, from the customer's
        browser, with the public key as `appId` (the one call made without the secret key: Pagar.me refuses
        an Authorization header)."""
        return f"{self.base_url}/tokens"

    def public_key(self) -> str:
        """The organization's public key (option `public_key`): without one, no browser tokenization."""
        return str((self.config.options or {}).get("public_key") or "")

    def store_card(self, *, token: str, customer) -> StoredCard:
        """A one-time `token_...` (60 s, single use) becomes a card stored on a Pagar.me customer: the
        customer is created (or found again through its idempotency key, our billing account id), then
        `POST /customers/{id}/cards {"token": ...}`. GatewayError when refused or not answered (the
        browser tokenizes again: a token is cheap, a card is never charged here)."""
        if not token.startswith("token_"):
            raise GatewayError("a Pagar.me card token starts with token_")
        found = self._send("POST", "/customers", body=_customer(customer),
                           idempotency_key=f"cobrador-customer-{customer.reference}")
        if not found or not str(found.get("id", "")).startswith("cus_"):
            raise GatewayError("Pagar.me did not create the customer")
        card = self._send("POST", f"/customers/{found['id']}/cards", body={"token": token},
                          idempotency_key=f"cobrador-card-{token}")
        if not card or not str(card.get("id", "")).startswith("card_"):
            raise GatewayError("Pagar.me did not store the card")
        try:
            return StoredCard(gateway_token=f"{found['id']}:{card['id']}", brand=str(card.get("brand") or "").lower(),
                              last4=str(card.get("last_four_digits") or ""), exp_month=int(card["exp_month"]),
                              exp_year=_four_digit_year(int(card["exp_year"])))
        except (KeyError, TypeError, ValueError):
            raise GatewayError("Pagar.me answered a card without its expiry") from None

    def fetch_charge(self, *, method, provider_charge_id: str) -> ChargeResult:
        charge = self._send("GET", f"/charges/{provider_charge_id}")
        if charge is None:
            return ChargeResult(status="unknown", provider_charge_id=provider_charge_id)
        return charge_result(charge)

    def find_charge(self, *, method, reference: str, idempotency_key: str) -> ChargeResult | None:
        answer = self._send("GET", "/orders", params={"code": reference, "page": 1, "size": 10})
        if answer is None:
            return ChargeResult(status="unknown")
        orders = [o for o in (answer.get("data") or []) if o.get("code") == reference]
        wanted = METHOD_NAMES.get(method)
        for order in sorted(orders, key=lambda o: o.get("created_at") or "", reverse=True):
            charges = [c for c in order.get("charges") or [] if c.get("payment_method") in (wanted, None)]
            if charges:
                return charge_result(charges[-1], order=order)
        return None

    def cancel_charge(self, *, method, provider_charge_id: str, idempotency_key: str) -> ChargeResult:
        charge = self._send("DELETE", f"/charges/{provider_charge_id}", idempotency_key=idempotency_key)
        if charge is None:
            return ChargeResult(status="unknown", provider_charge_id=provider_charge_id)
        return charge_result(charge)

    def refund(self, *, method, provider_charge_id: str, amount: int, idempotency_key: str) -> ChargeResult:
        """`DELETE /charges/{id}` with the amount. Answers `refunded` when Pagar.me accepted it."""
        charge = self._send("DELETE", f"/charges/{provider_charge_id}", body={"amount": amount},
                            idempotency_key=idempotency_key)
        if charge is None:
            return ChargeResult(status="unknown", provider_charge_id=provider_charge_id)
        result = charge_result(charge)
        if result.status not in ("failed",):
            result.status = "refunded"
        return result

    # --- callbacks -------------------------------------------------------------------------------

    def verify_callback(self, *, headers: dict[str, str], body: bytes) -> bool:
        """RS256 over the raw body; the key is the JWKS entry named by `kid` (the JWKS is cached)."""
        fields = _signature_fields(headers.get(SIGNATURE_HEADER, ""))
        if fields.get("alg", "").upper() != "RS256" or not fields.get("kid") or not fields.get("signature"):
            return False
        signature = _b64decode(fields["signature"])
        if signature is None:
            return False
        key = JWKS_CACHE.key(self.jwks_url, fields["kid"], timeout=self.timeout, transport=self.transport)
        if key is None:
            return False
        try:
            key.verify(signature, body, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            return False

    def parse_callback(self, *, headers: dict[str, str], body: bytes) -> CallbackEvent | None:
        payload = json.loads(body)
        event_type = payload.get("type") or ""
        family = event_type.split(".", 1)[0]
        data = payload.get("data") or {}
        if family == "charge":
            charge, order = data, data.get("order") or {}
        elif family == "order":
            order = data
            charges = data.get("charges") or []
            charge = charges[-1] if charges else {}
        else:
            return None
        status = charge_status(charge) if charge.get("status") else None
        if status is None:
            status = EVENT_STATUSES.get(event_type)
        if event_type == "order.created" or event_type.endswith(".partial_canceled"):
            status = status if status == "pending" else None
        return CallbackEvent(
            event_id=payload.get("id") or "", event_type=event_type,
            provider_charge_id=charge.get("id") or "",
            reference=order.get("code") or charge.get("code") or (order.get("metadata") or {}).get("reference", ""),
            status=status, amount_paid=int(charge.get("paid_amount") or 0),
            paid_at=_datetime(charge.get("paid_at")), raw=payload)


EVENT_STATUSES = {
    "charge.paid": "succeeded", "charge.overpaid": "succeeded", "charge.payment_failed": "failed",
    "charge.refunded": "refunded", "charge.chargedback": "refunded", "charge.canceled": "canceled",
    "order.paid": "succeeded", "order.payment_failed": "failed", "order.canceled": "canceled",
}


# --- mapping Pagar.me objects --------------------------------------------------------------------


def charge_status(charge: dict) -> str:
    status = charge.get("status") or ""
    transaction = charge.get("last_transaction") or {}
    if status in ("paid", "overpaid"):
        return "succeeded"
    if status == "failed":
        return "failed"
    if status == "canceled":
        refunded = transaction.get("status") in ("refunded", "partial_refunded", "pending_refund") \
            or charge.get("paid_at") or charge.get("paid_amount")
        return "refunded" if refunded else "canceled"
    if status == "chargedback":
        return "refunded"
    # pending, processing, underpaid (waits for the rest), or a status we do not know yet
    return "pending"


def charge_result(charge: dict, order: dict | None = None) -> ChargeResult:
    order = order or charge.get("order") or {}
    transaction = charge.get("last_transaction") or {}
    status = charge_status(charge)
    result = ChargeResult(
        status=status, provider_charge_id=charge.get("id") or "", provider_order_id=order.get("id") or "",
        amount_paid=int(charge.get("paid_amount") or 0) if status in ("succeeded", "pending", "refunded") else 0,
        paid_at=_datetime(charge.get("paid_at")), raw=charge)
    method = charge.get("payment_method") or transaction.get("transaction_type")
    if status == "failed" and method == "credit_card":
        result.failure_code, result.decline_class, result.failure_message = _decline(charge, transaction)
    elif status == "failed":  # a boleto or PIX that expired or could not be issued: no card to decline
        result.failure_code = transaction.get("status") or "failed"
    if charge.get("status") == "underpaid":
        result.failure_code = "underpaid"
    if method == "boleto":
        result.boleto_url = transaction.get("pdf") or transaction.get("url") or ""
        result.boleto_barcode = _digits_or_empty(transaction.get("barcode"))
        result.boleto_line = transaction.get("line") or ""
        result.expires_at = _datetime(transaction.get("due_at") or charge.get("due_at"))
    elif method == "pix":
        result.pix_copy_paste = transaction.get("qr_code") or ""
        result.pix_qr_code_url = transaction.get("qr_code_url") or ""
        result.expires_at = _datetime(transaction.get("expires_at"))
    return result


def order_result(order: dict, method: str) -> ChargeResult:
    charges = order.get("charges") or []
    if not charges:
        if order.get("status") == "failed":
            return ChargeResult(status="failed", provider_order_id=order.get("id") or "",
                                failure_code="order_failed", decline_class="soft", raw=order)
        return ChargeResult(status="unknown", provider_order_id=order.get("id") or "", raw=order)
    result = charge_result(charges[-1], order=order)
    if method == "card" and result.status == "pending" and order.get("status") == "failed":
        result.status = "failed"
    return result


def _decline(charge: dict, transaction: dict) -> tuple[str, str, str]:
    code = str(transaction.get("acquirer_return_code") or "").strip()
    message = transaction.get("acquirer_message") or ""
    antifraud = (transaction.get("antifraud_response") or {}).get("status") or ""
    if code in HARD_DECLINE_CODES:
        return HARD_DECLINE_CODES[code], "hard", message
    if antifraud.lower() in ("reproved", "denied"):
        return "fraud_suspected", "hard", message or "refused by the antifraud"
    if code in SOFT_DECLINE_CODES:
        return SOFT_DECLINE_CODES[code], "soft", message
    errors = (transaction.get("gateway_response") or {}).get("errors") or []
    if not message and errors:
        message = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
    return "generic_decline", "soft", message or f"transaction {transaction.get('status') or 'failed'}"


def _card_payment(token: str) -> tuple[str, dict]:
    token = (token or "").strip()
    if ":" in token:
        customer_id, card_id = token.split(":", 1)
        if customer_id.startswith("cus_") and card_id.startswith("card_"):
            return customer_id, {"card_id": card_id}
    elif token.startswith("card_"):
        return "", {"card_id": token}
    elif token.startswith("token_"):
        return "", {"card_token": token}
    raise GatewayError("a Pagar.me card token must be 'cus_…:card_…', 'card_…' or 'token_…'")


def _four_digit_year(year: int) -> int:
    return year + 2000 if year < 100 else year  # Pagar.me takes and may answer 2-digit years


def _customer(customer) -> dict:
    document = "".join(ch for ch in customer.document if ch.isalnum()).upper()
    data = {"name": customer.name or customer.reference, "email": customer.email or None,
            "code": customer.reference, "document": document or None,
            "type": "company" if customer.document_type == "cnpj" else "individual",
            "document_type": customer.document_type.upper() or None}
    address = customer.address or {}
    if address.get("zipcode") or address.get("street"):
        data["address"] = {
            "line_1": ", ".join(p for p in (address.get("number"), address.get("street"),
                                            address.get("neighborhood")) if p),
            "line_2": address.get("complement") or "", "zip_code": "".join(
                ch for ch in address.get("zipcode", "") if ch.isdigit()),
            "city": address.get("city", ""), "state": address.get("state", ""),
            "country": address.get("country") or "BR"}
    return {k: v for k, v in data.items() if v is not None}


def _error_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        message = body.get("message") or ""
        errors = body.get("errors")
        if isinstance(errors, dict):
            details = "; ".join(f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                                for k, v in errors.items())
            message = f"{message} ({details})" if message else details
        return message[:500]
    return str(body)[:200]


def _datetime(value) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _digits_or_empty(value) -> str:
    value = str(value or "")
    return value if value.isdigit() else ""


def _signature_fields(header: str) -> dict[str, str]:
    fields = {}
    for part in header.split(";"):
        name, sep, value = part.strip().partition("=")
        if sep:
            fields[name.strip().lower()] = value.strip()
    return fields


def _b64decode(value: str) -> bytes | None:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.urlsafe_b64decode(padded.replace("+", "-").replace("/", "_"))
    except (binascii.Error, ValueError):
        return None


# --- JWKS ----------------------------------------------------------------------------------------


class JwksCache:
    """Public keys by (jwks_url, kid). Refreshed after `ttl` seconds, or when an unknown kid shows up
    (at most once per `min_refresh` seconds, so forged kids cannot make us hammer the JWKS)."""

    def __init__(self, ttl: float = 3600.0, min_refresh: float = 30.0):
        self.ttl, self.min_refresh = ttl, min_refresh
        self._keys: dict[str, dict[str, rsa.RSAPublicKey]] = {}
        self._fetched_at: dict[str, float] = {}
        self._miss_refreshed_at: dict[str, float] = {}
        self._lock = threading.Lock()

    def clear(self):
        with self._lock:
            self._keys.clear()
            self._fetched_at.clear()
            self._miss_refreshed_at.clear()

    def key(self, url: str, kid: str, *, timeout: float = DEFAULT_TIMEOUT, transport=None) -> rsa.RSAPublicKey | None:
        now = time.monotonic()
        with self._lock:
            keys, fetched_at = self._keys.get(url), self._fetched_at.get(url, -1e9)
            missed_at = self._miss_refreshed_at.get(url, -1e9)
        stale = keys is None or now - fetched_at > self.ttl
        missing = keys is not None and kid not in keys and now - missed_at > self.min_refresh
        if stale or missing:
            fetched = self._fetch(url, timeout, transport)
            with self._lock:
                self._fetched_at[url] = now
                if missing:
                    self._miss_refreshed_at[url] = now
                if fetched is not None:
                    self._keys[url] = fetched
                keys = self._keys.get(url) or {}
        return keys.get(kid)

    @staticmethod
    def _fetch(url: str, timeout: float, transport) -> dict[str, rsa.RSAPublicKey] | None:
        try:
            response = http_client(timeout, transport).get(url)
            response.raise_for_status()
            jwks = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("could not fetch the Pagar.me JWKS: %s", type(exc).__name__)
            return None
        keys = {}
        for jwk in jwks.get("keys") or []:
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig" or jwk.get("alg", "RS256") != "RS256":
                continue
            n, e = _b64decode(jwk.get("n", "")), _b64decode(jwk.get("e", ""))
            if not n or not e or not jwk.get("kid"):
                continue
            keys[jwk["kid"]] = rsa.RSAPublicNumbers(int.from_bytes(e, "big"), int.from_bytes(n, "big")).public_key()
        return keys


JWKS_CACHE = JwksCache()
