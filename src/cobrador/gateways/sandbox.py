"""The built-in sandbox provider: deterministic, in-process, and real enough to test billing end to end.

It talks to no provider. Its charges live in its own table (`SandboxCharge`), one row per idempotency
key, so a retried request returns the stored charge and never makes a second one, across processes.

Test card tokens (a card payment method's `gateway_token`):

| token                            | outcome                                                                |
|----------------------------------|------------------------------------------------------------------------|
| `tok_sandbox_success`            | succeeded                                                              |
| `tok_sandbox_decline`            | failed, soft decline, `generic_decline`                                |
| `tok_sandbox_insufficient_funds` | failed, soft decline, `insufficient_funds`                             |
| `tok_sandbox_stolen`             | failed, hard decline, `stolen_card`                                    |
| `tok_sandbox_timeout`            | the charge goes through, but the answer is lost: `unknown` (timeout)   |
| `tok_sandbox_error_500`          | the charge goes through, then a 500: `unknown` (`provider_error`)      |

Any other token is refused before anything happens (`GatewayError`). A card stored through the card
update page has the token of its test number's outcome followed by `:<nonce>` (one stored card each).

Cards typed on the hosted card update page go to the sandbox's own tokens endpoint,
`POST /sandbox/core/v5/tokens?appId=<public key>` (Pagar.me's `POST /tokens` in shape; the public key is
`sandbox_public_key(config)`), never to cobrador's pages or API. It takes only the test card numbers in
TEST_CARD_NUMBERS, keeps nothing of the number but its last four digits and brand, and answers a
one-time `token_sbx_...` (signed, valid 60 s) that `store_card` turns into a stored card.

For the two `unknown` outcomes the charge is recorded as succeeded: `find_charge` (by reference or
idempotency key) and a retry with the same idempotency key both report it as succeeded, which is how
billing reconciles an unknown outcome.

Boleto and PIX charges are issued `pending`. `cobrador sandbox pay PAYMENT_ID` (or
`send_sandbox_payment_callback(payment)`) marks one paid and sends a real signed callback to
`COBRADOR_PUBLIC_URL/v1/callbacks/sandbox/<callback_token>`, with the header
`X-Sandbox-Signature: sha256=<hex HMAC-SHA256(webhook_secret, raw body)>`.
"""

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction

from cobrador.core import clock
from cobrador.core.bulk import build, insert_objects
from cobrador.core.crypto import constant_time_equals
from cobrador.gateways.base import CallbackEvent, ChargeRequest, ChargeResult, GatewayError, StoredCard
from cobrador.gateways.models import GatewayConfig, SandboxCharge

SIGNATURE_HEADER = "X-Sandbox-Signature"
BRAZIL = ZoneInfo("America/Sao_Paulo")


@dataclass(frozen=True)
class CardOutcome:
    status: str  # what the charge becomes: succeeded | failed
    failure_code: str = ""
    decline_class: str = ""
    answer: str = ""  # "unknown": the adapter loses the answer (timeout / 500 after the charge)
    answer_code: str = ""
    message: str = ""


TEST_CARD_TOKENS: dict[str, CardOutcome] = {
    "tok_sandbox_success": CardOutcome("succeeded"),
    "tok_sandbox_decline": CardOutcome("failed", "generic_decline", "soft", message="The card was declined."),
    "tok_sandbox_insufficient_funds": CardOutcome("failed", "insufficient_funds", "soft",
                                                  message="The card has insufficient funds."),
    "tok_sandbox_stolen": CardOutcome("failed", "stolen_card", "hard", message="The card was reported stolen."),
    "tok_sandbox_timeout": CardOutcome("succeeded", answer="unknown", answer_code="timeout",
                                       message="No answer from the provider in time."),
    "tok_sandbox_error_500": CardOutcome("succeeded", answer="unknown", answer_code="provider_error",
                                         message="The provider answered 500."),
}

# The card update page's test numbers (Luhn-valid) and the outcome each stored card gets.
TEST_CARD_NUMBERS: dict[str, tuple[str, str]] = {
    "4000000000000010": ("visa", "tok_sandbox_success"),
    "5555555555554444": ("mastercard", "tok_sandbox_success"),
    "4000000000000002": ("visa", "tok_sandbox_decline"),
    "4000000000009995": ("visa", "tok_sandbox_insufficient_funds"),
    "4000000000009979": ("visa", "tok_sandbox_stolen"),
}
CARD_TOKEN_PREFIX = "token_sbx_"
CARD_TOKEN_SECONDS = 60
_SIGNING_SALT = "cobrador.gateways.sandbox.card-token"


def card_outcome(token: str) -> CardOutcome | None:
    """The outcome of a card token: a test token, or a stored card's (`<test token>:<nonce>`)."""
    return TEST_CARD_TOKENS.get((token or "").split(":", 1)[0])


def sandbox_public_key(config: GatewayConfig) -> str:
    """The sandbox's public key for the tokens endpoint: names the configuration, opens nothing."""
    return f"pk_test_sandbox_{config.public_id}"


def tokenize_card(*, public_key: str, card: dict) -> dict:
    """The sandbox's `POST /tokens`: a test card in, a one-time signed token out (Pagar.me's token shape).
    Raises ValueError naming the field at fault. The number is read here and forgotten."""
    prefix = "pk_test_sandbox_"
    config = GatewayConfig.objects.filter(public_id=public_key.removeprefix(prefix), provider="sandbox",
                                          active=True).first() if public_key.startswith(prefix) else None
    if config is None:
        raise PermissionError("unknown public key")
    number = "".join(ch for ch in str(card.get("number") or "") if ch.isdigit())
    if number not in TEST_CARD_NUMBERS:
        raise ValueError("card.number: the sandbox takes only its test card numbers: " + ", ".join(TEST_CARD_NUMBERS))
    try:
        exp_month, exp_year = int(card.get("exp_month")), int(card.get("exp_year"))
    except (TypeError, ValueError):
        raise ValueError("card.exp_month / card.exp_year: numbers are required") from None
    exp_year = exp_year + 2000 if exp_year < 100 else exp_year
    now = clock.now()
    if not 1 <= exp_month <= 12 or (exp_year, exp_month) < (now.year, now.month):
        raise ValueError("card.exp_month: the card has expired or the month is not 1-12")
    if not str(card.get("cvv") or "").isdigit():
        raise ValueError("card.cvv: 3 or 4 digits are required")
    brand, outcome = TEST_CARD_NUMBERS[number]
    expires_at = now + timedelta(seconds=CARD_TOKEN_SECONDS)
    details = {"first_six_digits": number[:6], "last_four_digits": number[-4:], "brand": brand.title(),
               "holder_name": str(card.get("holder_name") or "")[:64], "exp_month": exp_month, "exp_year": exp_year}
    signed = signing.Signer(salt=_SIGNING_SALT).sign_object(
        {"g": config.public_id, "o": outcome, "e": expires_at.timestamp(), "n": secrets.token_hex(8),
         "c": details}, compress=True)
    return {"id": CARD_TOKEN_PREFIX + signed, "type": "card", "created_at": now.isoformat(),
            "expires_at": expires_at.isoformat(), "card": details}


TEST_CARD_TOKENS_DOC = "\n".join(
    f"* `{token}`: " + (
        f"the charge goes through but the answer is lost ({o.answer_code}): status unknown" if o.answer
        else "succeeded" if o.status == "succeeded"
        else f"failed, {o.decline_class} decline, {o.failure_code}")
    for token, o in TEST_CARD_TOKENS.items())


class SandboxGateway:
    provider = "sandbox"

    def __init__(self, config: GatewayConfig):
        self.config = config

    # --- charges ---------------------------------------------------------------------------------

    def charge_card(self, request: ChargeRequest) -> ChargeResult:
        return self._one(replace(request, method="card"))

    def issue_boleto(self, request: ChargeRequest) -> ChargeResult:
        return self._one(replace(request, method="bank_slip"))

    def issue_pix(self, request: ChargeRequest) -> ChargeResult:
        return self._one(replace(request, method="pix"))

    def _one(self, request: ChargeRequest) -> ChargeResult:
        answer = self.charge_many([request])[0]
        if isinstance(answer, GatewayError):
            raise answer
        return answer

    def charge_many(self, requests: list[ChargeRequest]) -> list[ChargeResult | GatewayError]:
        """Card charges, boletos and PIX (each by its request's `method`), answered as the single calls
        answer them, with one insert and one query in one transaction. The sandbox is no network call
        away, so charging hands it a batch where a real provider gets a thread pool. A request refused
        before anything happened gets its GatewayError in its place."""
        now = clock.now()
        answers: list[ChargeResult | GatewayError | None] = [None] * len(requests)
        drafts: dict[str, SandboxCharge] = {}
        for i, request in enumerate(requests):
            try:
                charge = self._draft(request, now)
            except GatewayError as exc:
                answers[i] = exc
                continue
            drafts.setdefault(request.idempotency_key, charge)
        with transaction.atomic():
            stored = SandboxCharge.objects.in_bulk(list(drafts), field_name="idempotency_key")  # earlier calls
            new = [charge for key, charge in drafts.items() if key not in stored]
            try:
                with transaction.atomic():
                    insert_objects(new)
                stored.update((charge.idempotency_key, charge) for charge in new)
            except IntegrityError:  # a concurrent call with one of these keys won: answer with its charge
                insert_objects(new, ignore_conflicts=True)
                stored = SandboxCharge.objects.in_bulk(list(drafts), field_name="idempotency_key")
        made = set()
        for i, request in enumerate(requests):
            if answers[i] is not None:
                continue
            key = request.idempotency_key
            charge = stored[key]
            created = charge.provider_charge_id == drafts[key].provider_charge_id and key not in made
            made.add(key)
            outcome = card_outcome(charge.card_token)
            if created and charge.answered == "unknown":
                answers[i] = ChargeResult(status="unknown", failure_code=outcome.answer_code,
                                          failure_message=outcome.message)
            else:
                answers[i] = charge_result(charge)
        return answers

    def _draft(self, request: ChargeRequest, now: datetime) -> SandboxCharge:
        """The row a request would create, or GatewayError when the sandbox refuses it."""
        if request.amount <= 0:
            raise GatewayError("amount must be positive")
        fields: dict = {"status": "pending"}
        if request.method == "card":
            outcome = card_outcome(request.card_token)
            if outcome is None:
                raise GatewayError(f"the sandbox does not know the card token {request.card_token!r}; use one of "
                                   + ", ".join(TEST_CARD_TOKENS))
            fields = {"status": outcome.status, "failure_code": outcome.failure_code, "answered": outcome.answer,
                      "card_token": request.card_token, "paid_at": now if outcome.status == "succeeded" else None}
        elif request.method == "bank_slip":
            due = request.due_date or (now + timedelta(days=3)).date()
            fields["expires_at"] = datetime(due.year, due.month, due.day, 23, 59, 59, tzinfo=BRAZIL).astimezone(UTC)
        elif request.method == "pix":
            fields["expires_at"] = request.expires_at or now + timedelta(days=1)
        else:
            raise GatewayError(f"the sandbox does not take method {request.method!r}")
        return build(SandboxCharge, gateway=self.config, idempotency_key=request.idempotency_key,
                             reference=request.reference, method=request.method, amount=request.amount,
                             currency=request.currency, created_at=now, **fields)

    # --- cards tokenized in the customer's browser ---------------------------------------------------

    def tokenize_url(self) -> str:
        return "/sandbox/core/v5/tokens"  # on whichever host serves the page (custom domains too)

    def public_key(self) -> str:
        return sandbox_public_key(self.config)

    def store_card(self, *, token: str, customer) -> StoredCard:
        """A token from `tokenize_card` becomes a stored card: its test number's outcome token plus the
        token's nonce (each stored card is its own). Refused when forged, expired or another configuration's."""
        try:
            data = signing.Signer(salt=_SIGNING_SALT).unsign_object(token.removeprefix(CARD_TOKEN_PREFIX))
        except (signing.BadSignature, ValueError):
            raise GatewayError("the sandbox does not know this card token") from None
        if not token.startswith(CARD_TOKEN_PREFIX) or data.get("g") != self.config.public_id:
            raise GatewayError("the card token belongs to another sandbox")
        if clock.now().timestamp() > float(data["e"]):
            raise GatewayError("the card token expired (60 s): tokenize the card again")
        card = data["c"]
        return StoredCard(gateway_token=f"{data['o']}:{data['n']}", brand=card["brand"].lower(),
                          last4=card["last_four_digits"], exp_month=card["exp_month"], exp_year=card["exp_year"])

    def fetch_charge(self, *, method, provider_charge_id: str) -> ChargeResult:
        return charge_result(self._charge(provider_charge_id))

    def find_charge(self, *, method, reference: str, idempotency_key: str) -> ChargeResult | None:
        charges = SandboxCharge.objects.filter(gateway=self.config)
        charge = (charges.filter(idempotency_key=idempotency_key).first()
                  or charges.filter(reference=reference, method=method).order_by("-id").first())
        return charge_result(charge) if charge is not None else None

    def cancel_charge(self, *, method, provider_charge_id: str, idempotency_key: str) -> ChargeResult:
        """A pending boleto/PIX is canceled; a succeeded card charge is refunded in full."""
        with transaction.atomic():
            charge = self._charge(provider_charge_id, lock=True)
            if charge.status == "pending":
                charge.status, charge.canceled_at = "canceled", clock.now()
            elif charge.status == "succeeded":
                charge.status, charge.amount_refunded, charge.canceled_at = "refunded", charge.amount, clock.now()
            elif charge.status == "failed":
                raise GatewayError("a failed charge cannot be canceled")
            charge.save(update_fields=["status", "amount_refunded", "canceled_at"])
        return charge_result(charge)

    def refund(self, *, method, provider_charge_id: str, amount: int, idempotency_key: str) -> ChargeResult:
        """Refunds `amount` (partial or full). Answers `refunded` when accepted; the same idempotency key
        refunds once."""
        with transaction.atomic():
            charge = self._charge(provider_charge_id, lock=True)
            if idempotency_key in charge.refund_keys:
                return charge_result(charge, status="refunded")
            if charge.status not in ("succeeded", "refunded"):
                raise GatewayError(f"a {charge.status} charge cannot be refunded")
            if amount <= 0 or amount > charge.amount - charge.amount_refunded:
                raise GatewayError("the refund amount exceeds what is left to refund")
            charge.amount_refunded += amount
            charge.refund_keys = [*charge.refund_keys, idempotency_key]
            if charge.amount_refunded == charge.amount:
                charge.status, charge.canceled_at = "refunded", clock.now()
            charge.save(update_fields=["status", "amount_refunded", "refund_keys", "canceled_at"])
        return charge_result(charge, status="refunded")

    def _charge(self, provider_charge_id: str, lock: bool = False) -> SandboxCharge:
        charges = SandboxCharge.objects.filter(gateway=self.config)
        if lock:
            charges = charges.select_for_update()
        try:
            return charges.get(provider_charge_id=provider_charge_id)
        except SandboxCharge.DoesNotExist:
            raise GatewayError(f"no sandbox charge {provider_charge_id!r}") from None

    # --- callbacks -------------------------------------------------------------------------------

    def verify_callback(self, *, headers: dict[str, str], body: bytes) -> bool:
        secret = self.config.credentials.get("webhook_secret", "")
        given = headers.get(SIGNATURE_HEADER.lower(), "")
        if not secret or not given.startswith("sha256="):
            return False
        return constant_time_equals(given.removeprefix("sha256=").lower(), sign(secret, body))

    def parse_callback(self, *, headers: dict[str, str], body: bytes) -> CallbackEvent | None:
        payload = json.loads(body)
        event_type = payload.get("type", "")
        if not event_type.startswith("charge."):
            return None
        data = payload.get("data") or {}
        paid_at = data.get("paid_at")
        return CallbackEvent(
            event_id=payload["id"], event_type=event_type, provider_charge_id=data.get("id", ""),
            reference=data.get("reference", ""), status=CALLBACK_STATUSES.get(event_type),
            amount_paid=int(data.get("amount_paid") or 0),
            paid_at=datetime.fromisoformat(paid_at) if paid_at else None, raw=payload)


CALLBACK_STATUSES = {"charge.paid": "succeeded", "charge.failed": "failed", "charge.canceled": "canceled",
                     "charge.refunded": "refunded"}


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def charge_result(charge: SandboxCharge, *, status: str | None = None) -> ChargeResult:
    outcome = card_outcome(charge.card_token)
    result = ChargeResult(
        status=status or charge.status, provider_charge_id=charge.provider_charge_id,
        amount_paid=charge.amount if charge.paid_at else 0, paid_at=charge.paid_at,
        failure_code=charge.failure_code,
        failure_message=outcome.message if outcome and charge.status == "failed" else "",
        decline_class=outcome.decline_class if outcome and charge.status == "failed" else "",
        expires_at=charge.expires_at, raw=charge_data(charge))
    if charge.method == "bank_slip":
        result.boleto_barcode, result.boleto_line = boleto_numbers(charge.provider_charge_id, charge.amount)
        result.boleto_url = f"{settings.PUBLIC_URL}/sandbox/boletos/{charge.provider_charge_id}"
    elif charge.method == "pix":
        result.pix_copy_paste = pix_emv(txid=charge.provider_charge_id, amount=charge.amount)
        result.pix_qr_code_url = f"{settings.PUBLIC_URL}/sandbox/pix/{charge.provider_charge_id}"
    return result


def charge_data(charge: SandboxCharge) -> dict:
    return {
        "id": charge.provider_charge_id, "reference": charge.reference, "method": charge.method,
        "amount": charge.amount, "amount_paid": charge.amount if charge.paid_at else 0,
        "amount_refunded": charge.amount_refunded, "currency": charge.currency, "status": charge.status,
        "failure_code": charge.failure_code,
        "created_at": charge.created_at.isoformat(),
        "paid_at": charge.paid_at.isoformat() if charge.paid_at else None,
        "canceled_at": charge.canceled_at.isoformat() if charge.canceled_at else None,
    }


# --- boleto and PIX documents (well-formed, never payable) ---------------------------------------


def boleto_numbers(seed: str, amount: int) -> tuple[str, str]:
    """A 44-digit barcode and its 47-digit linha digitável, with valid check digits, for bank 000."""
    digits = "".join(str(b % 10) for b in hashlib.sha256(seed.encode()).digest())[:25]
    free_field = digits.ljust(25, "0")
    due_factor = "0000"
    value = str(amount).rjust(10, "0")[-10:]
    without_dv = "000" + "9" + due_factor + value + free_field  # bank, currency 9, factor, value, free
    barcode = without_dv[:4] + _mod11(without_dv) + without_dv[4:]

    def field(part: str) -> str:
        return part + _mod10(part)

    f1 = field(barcode[0:4] + barcode[19:24])
    f2 = field(barcode[24:34])
    f3 = field(barcode[34:44])
    line = f1 + f2 + f3 + barcode[4] + barcode[5:19]
    return barcode, line


def _mod10(number: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(number)):
        n = int(ch) * (2 if i % 2 == 0 else 1)
        total += n // 10 + n % 10
    return str((10 - total % 10) % 10)


def _mod11(number: str) -> str:
    total = sum(int(ch) * (2 + i % 8) for i, ch in enumerate(reversed(number)))
    dv = 11 - total % 11
    return "1" if dv in (0, 1, 10, 11) else str(dv)


def pix_emv(*, txid: str, amount: int, key: str = "sandbox@cobrador.invalid",
            merchant: str = "COBRADOR SANDBOX", city: str = "SAO PAULO") -> str:
    """An EMV BR Code ("copia e cola") with a valid CRC16; the key is not a real PIX key."""
    def tlv(tag: str, value: str) -> str:
        return f"{tag}{len(value):02d}{value}"

    txid = "".join(ch for ch in txid if ch.isalnum())[:25]
    payload = (tlv("00", "01") + tlv("26", tlv("00", "br.gov.bcb.pix") + tlv("01", key))
               + tlv("52", "0000") + tlv("53", "986") + tlv("54", f"{amount // 100}.{amount % 100:02d}")
               + tlv("58", "BR") + tlv("59", merchant[:25]) + tlv("60", city[:15])
               + tlv("62", tlv("05", txid)) + "6304")
    return payload + f"{_crc16(payload.encode()):04X}"


def _crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


# --- paying a sandbox charge: `cobrador sandbox pay` ---------------------------------------------


class SandboxPayFailed(Exception):
    pass


def _charge_of_payment(payment) -> SandboxCharge:
    if payment.provider != "sandbox" or payment.gateway_id is None:
        raise SandboxPayFailed(f"payment {payment.public_id} was not made through the sandbox "
                               f"(provider {payment.provider!r})")
    charges = SandboxCharge.objects.filter(gateway_id=payment.gateway_id)
    charge = None
    if payment.provider_charge_id:
        charge = charges.filter(provider_charge_id=payment.provider_charge_id).first()
    charge = charge or charges.filter(idempotency_key=payment.idempotency_key).first()
    if charge is None:
        raise SandboxPayFailed(f"the sandbox has no charge for payment {payment.public_id}")
    return charge


def mark_sandbox_charge_paid(payment) -> SandboxCharge:
    """The payer pays the boleto or PIX of `payment` at the sandbox. Paying twice changes nothing."""
    with transaction.atomic():
        charge = _charge_of_payment(payment)
        charge = SandboxCharge.objects.select_for_update().get(pk=charge.pk)
        if charge.status == "pending":
            charge.status, charge.paid_at = "succeeded", clock.now()
            charge.save(update_fields=["status", "paid_at"])
        elif charge.status != "succeeded":
            raise SandboxPayFailed(f"the sandbox charge of payment {payment.public_id} is {charge.status}; "
                                   "only a pending boleto or PIX can be paid")
    return charge


def build_callback(charge: SandboxCharge, event_type: str = "charge.paid") -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of the signed callback the sandbox sends about `charge`. The event id is
    stable per (charge, event type), so sending it again is a duplicate the receiver ignores."""
    config = charge.gateway
    body = json.dumps({
        "id": f"sbx_evt_{charge.provider_charge_id}_{event_type.rsplit('.', 1)[-1]}",
        "type": event_type,
        "created_at": clock.now().isoformat(),
        "data": charge_data(charge),
    }, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: "sha256=" + sign(config.credentials.get("webhook_secret", ""), body),
    }
    url = f"{settings.PUBLIC_URL}/v1/callbacks/sandbox/{config.callback_token}"
    return url, headers, body


def build_sandbox_payment_callback(payment) -> tuple[str, dict[str, str], bytes]:
    """Marks the sandbox charge of `payment` paid and returns the callback to deliver: (url, headers,
    body). Deliver it however suits you (httpx, django.test.Client with the path of `url`)."""
    return build_callback(mark_sandbox_charge_paid(payment), "charge.paid")


def send_sandbox_payment_callback(payment, *, transport=None, timeout: float = 10.0):
    """Marks the sandbox charge of `payment` paid and POSTs the signed callback to
    COBRADOR_PUBLIC_URL. `transport` (e.g. `httpx.WSGITransport(app=...)`) delivers in-process.
    Returns the httpx response."""
    import httpx

    url, headers, body = build_sandbox_payment_callback(payment)
    with httpx.Client(transport=transport, timeout=timeout) as client:
        return client.post(url, content=body, headers=headers)
