"""A fake Pagar.me (API v5, "Core API") on loopback, speaking the documented protocol
(shared/reference/providers.md §1).

* HTTP Basic with the secret key as username and an empty password; anything else is a 401.
* `Idempotency-Key` on writes: the first answer is kept 24 h and replayed; the same key with another
  body is a 422 [U]. Whether a 500 is replayed is [U]: `replay_errors` (default False: the cache keeps
  what really happened, so a retry after "500 after charging" sees the paid charge).
* `POST /orders` with `closed: true` creates the order and one charge per payment, in cents. Cards are
  paid at once (charge `paid`, transaction `captured`) unless a fault is scripted; boletos come back
  `pending`/`generated` with url, line and barcode; PIX `pending`/`waiting_payment` with qr_code.
* `GET /orders?code=`, `GET /orders/{id}`, `GET /charges/{id}`, `DELETE /charges/{id}` (cancel a pending
  charge, refund a paid one, `{"amount": cents}` for part of it).
* Browser-side tokenization: `POST /tokens?appId=<public key>` (no Authorization header: one is refused,
  as Pagar.me refuses it), CORS for any origin with its OPTIONS preflight, body
  `{"type": "card", "card": {number, holder_name, exp_month, exp_year, cvv}}` -> a token object
  `{id: token_…, type, created_at, expires_at (+60 s), card: {first_six_digits, last_four_digits, brand, …}}`.
  A token is used once, within 60 s. `POST /customers` and `POST /customers/{id}/cards` with
  `{"token": "token_…"}` store the card (`card_…`). `tokenized_numbers` keeps the numbers it received, so a
  test can show where a card number went (here) and where it did not (cobrador).
* `/.well-known/jwks.json` (no auth) serves the RSA keys that sign callbacks; `rotate_key()` adds one.
* `send_callback(url, event_type, charge_id)` POSTs `{id: hook_…, account, type, created_at, data}`
  signed with `X-Webhook-Asymmetric-Signature: alg=RS256; kid=…; signature=<base64url>` and resends on a
  non-2xx or an error, up to `webhook_max_attempts`.

Faults (`fail_next(kind)`, for the next charge-creating request):
`decline` (acquirer code 05, soft), `insufficient_funds` (51, soft), `hard_decline` (43 stolen card),
`antifraud` (reproved), `timeout_after_charge` (charge paid, the answer never comes),
`500_after_charge` (charge paid, answer 500), `timeout` and `500` (nothing created), `validation` (422).
"""

import base64
import json
import secrets
import time

import httpx
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes.http_fake import CHARGE_FAULTS, Answer, HttpFake, Request, pix_emv

PREFIX = "/core/v5"
DECLINES = {
    "decline": ("05", "Transação não autorizada"),
    "insufficient_funds": ("51", "Saldo insuficiente"),
    "hard_decline": ("43", "Cartão roubado"),
}


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def _luhn(number: str) -> bool:
    total = 0
    for i, digit in enumerate(int(d) for d in reversed(number)):
        total += digit if i % 2 == 0 else (digit * 2 - 9 if digit > 4 else digit * 2)
    return total % 10 == 0


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakePagarme(HttpFake):
    FAULTS = CHARGE_FAULTS | set(DECLINES) | {"antifraud"}

    def __init__(self, secret_key: str = "sk_test_fakepagarme0001", *, replay_errors: bool = False,
                 webhook_max_attempts: int = 10, public_key: str = "pk_test_fakepagarme0001", **kwargs):
        super().__init__(**kwargs)
        self.secret_key = secret_key
        self.public_key = public_key
        self.tokens: dict[str, dict] = {}  # token id -> {card, expires_at (epoch), used}
        self.customers: dict[str, dict] = {}
        self.cards: dict[str, dict] = {}
        self.tokenized_numbers: list[str] = []
        self.replay_errors = replay_errors
        self.webhook_max_attempts = webhook_max_attempts
        self.orders: dict[str, dict] = {}
        self.charges: dict[str, dict] = {}  # charge id -> charge (with "order" {id, code, status})
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.current_kid = ""
        self.deliveries: list[dict] = []  # callbacks sent: {url, status, body, headers}
        self.rotate_key()

    # --- addresses ---

    @property
    def url(self) -> str:
        """Where settings.PAGARME_BASE_URL points the adapter: like https://api.pagar.me/core/v5."""
        return self.origin + PREFIX

    @property
    def jwks_url(self) -> str:
        return self.origin + "/.well-known/jwks.json"

    # --- test helpers ---

    def charges_for(self, code: str) -> int:
        """How many charges were created for orders with this code (our payment reference)."""
        with self.lock:
            return sum(1 for c in self.charges.values() if c["order"]["code"] == code)

    def charges_with_code(self, code: str) -> list[dict]:
        with self.lock:
            return [c for c in self.charges.values() if c["order"]["code"] == code]

    def rotate_key(self) -> str:
        kid = _id("kid")
        with self.lock:
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.current_kid = kid
        return kid

    def pay(self, charge_id: str, amount: int | None = None) -> dict:
        """The payer pays a pending boleto or PIX (the amount may differ: under/overpaid)."""
        with self.lock:
            charge = self.charges[charge_id]
            paid = charge["amount"] if amount is None else amount
            status = "paid" if paid == charge["amount"] else "overpaid" if paid > charge["amount"] else "underpaid"
            now = self._now()
            charge.update(status=status, paid_amount=paid, paid_at=now, updated_at=now)
            charge["last_transaction"].update(status=status, paid_amount=paid, paid_at=now)
            self._sync_order(charge)
            return json.loads(json.dumps(charge))

    def expire(self, charge_id: str) -> dict:
        """A pending PIX or boleto runs out unpaid: the charge fails, its transaction expires."""
        with self.lock:
            charge = self.charges[charge_id]
            charge.update(status="failed", updated_at=self._now())
            charge["last_transaction"]["status"] = "expired"
            self._sync_order(charge)
            return json.loads(json.dumps(charge))

    def send_callback(self, url: str, event_type: str, charge_id: str, *, sign: bool = True,
                      signature: str | None = None, hook_id: str | None = None) -> list[int | None]:
        """POST a signed callback about `charge_id`; resend on a non-2xx or an error. Returns the status
        of each attempt (None for a connection error or timeout)."""
        with self.lock:
            charge = json.loads(json.dumps(self.charges[charge_id]))
            data = json.loads(json.dumps(self.orders[charge["order"]["id"]])) if event_type.startswith("order.") \
                else charge
        body = json.dumps({"id": hook_id or _id("hook"), "account": {"id": "acc_fake", "name": "Fake store"},
                           "type": event_type, "created_at": self._now(), "data": data}).encode()
        headers = {"content-type": "application/json", "user-agent": "Pagar.me-Webhook"}
        if signature is not None:
            headers["x-webhook-asymmetric-signature"] = signature
        elif sign:
            headers["x-webhook-asymmetric-signature"] = self.signature_header(body)
        statuses = []
        for _ in range(self.webhook_max_attempts):
            try:
                response = httpx.post(url, content=body, headers=headers, timeout=5.0)
                status = response.status_code
            except httpx.HTTPError:
                status = None
            statuses.append(status)
            self.deliveries.append({"url": url, "status": status, "body": body, "headers": headers})
            if status is not None and 200 <= status < 300:
                break
        return statuses

    def signature_header(self, body: bytes, kid: str | None = None) -> str:
        kid = kid or self.current_kid
        signature = self.keys[kid].sign(body, padding.PKCS1v15(), hashes.SHA256())
        return f"alg=RS256; kid={kid}; signature={_b64url(signature)}"

    # --- the API ---

    def _now(self) -> str:
        return self.now().strftime("%Y-%m-%dT%H:%M:%SZ")

    def route(self, request: Request) -> Answer:
        path = request.path
        if request.method == "GET" and path == "/.well-known/jwks.json":
            return Answer(200, self.jwks())
        if not path.startswith(PREFIX):
            return Answer(404, {"message": "Not found"})
        path = path[len(PREFIX):]
        if path == "/tokens":
            return self._tokens(request)
        if not self._authorized(request):
            return Answer(401, {"message": "Authorization has been denied for this request."})
        key = request.headers.get("idempotency-key", "") if request.method in ("POST", "PUT", "DELETE") else ""
        if key:
            cached = self.cached(key, request)
            if cached is False:
                return Answer(422, {"message": "Idempotency-Key already used with a different request."})
            if cached is not None:
                return Answer(cached.status, cached.body, {"idempotent-replayed": "true"})
        parts = path.strip("/").split("/")
        if request.method == "POST" and parts == ["orders"]:
            return self._create_order(request, key)
        if request.method == "GET" and parts == ["orders"]:
            return self._list_orders(request)
        if request.method == "GET" and len(parts) == 2 and parts[0] == "orders":
            return self._found(self.orders.get(parts[1]))
        if request.method == "GET" and len(parts) == 2 and parts[0] == "charges":
            return self._found(self.charges.get(parts[1]))
        if request.method == "POST" and parts == ["customers"]:
            return self._create_customer(request, key)
        if request.method == "POST" and len(parts) == 3 and parts[0] == "customers" and parts[2] == "cards":
            return self._store_card(request, parts[1], key)
        if request.method == "DELETE" and len(parts) == 2 and parts[0] == "charges":
            answer = self._cancel_charge(parts[1], request)
            if answer.status < 500 and answer.status != 404:
                self.remember(key, request, answer)
            return answer
        return Answer(404, {"message": "Not found"})

    # --- cards: browser tokenization and stored cards ---

    CORS = {"access-control-allow-origin": "*", "access-control-allow-methods": "POST, OPTIONS",
            "access-control-allow-headers": "Content-Type", "access-control-max-age": "600"}

    def _tokens(self, request: Request) -> Answer:
        if request.method == "OPTIONS":
            return Answer(204, None, dict(self.CORS))
        if request.method != "POST":
            return Answer(405, {"message": "Method not allowed."}, dict(self.CORS))
        if "authorization" in request.headers:
            return Answer(401, {"message": "Authorization header is not allowed."}, dict(self.CORS))
        if request.query.get("appid") != self.public_key and request.query.get("appId") != self.public_key:
            return Answer(401, {"message": "Invalid appId."}, dict(self.CORS))
        try:
            body = request.json()
        except ValueError:
            return Answer(400, {"message": "The request is invalid."}, dict(self.CORS))
        card = (body or {}).get("card") if isinstance(body, dict) and body.get("type") == "card" else None
        errors = {}
        if not isinstance(card, dict):
            return Answer(422, {"message": "The request is invalid.", "errors": {"card": ["required"]}},
                          dict(self.CORS))
        number = str(card.get("number") or "")
        if not (number.isdigit() and 13 <= len(number) <= 19 and _luhn(number)):
            errors["card.number"] = ["The number field is not a valid credit card number."]
        if not isinstance(card.get("exp_month"), int) or not 1 <= card["exp_month"] <= 12:
            errors["card.exp_month"] = ["The field exp_month must be between 1 and 12."]
        if not isinstance(card.get("exp_year"), int):
            errors["card.exp_year"] = ["The exp_year field is required."]
        if not str(card.get("cvv") or "").isdigit():
            errors["card.cvv"] = ["The cvv field is required."]
        if errors:
            return Answer(422, {"message": "The request is invalid.", "errors": errors}, dict(self.CORS))
        now = self.now()
        token_id = _id("token")
        details = {"first_six_digits": number[:6], "last_four_digits": number[-4:],
                   "brand": "Mastercard" if number[0] == "5" else "Visa",
                   "holder_name": str(card.get("holder_name") or ""), "exp_month": card["exp_month"],
                   "exp_year": card["exp_year"]}
        with self.lock:
            self.tokenized_numbers.append(number)
            self.tokens[token_id] = {"card": details, "expires_at": now.timestamp() + 60, "used": False}
        return Answer(200, {"id": token_id, "type": "card", "created_at": self._now(),
                            "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now.timestamp() + 60)),
                            "card": details}, dict(self.CORS))

    def _create_customer(self, request: Request, key: str) -> Answer:
        body = request.json() or {}
        if not body.get("name"):
            return Answer(422, {"message": "The request is invalid.",
                                "errors": {"name": ["The name field is required."]}})
        customer = {"id": _id("cus"), **{k: body.get(k) for k in ("name", "email", "code", "document", "type")},
                    "created_at": self._now()}
        with self.lock:
            self.customers[customer["id"]] = customer
        answer = Answer(200, json.loads(json.dumps(customer)))
        self.remember(key, request, answer)
        return answer

    def _store_card(self, request: Request, customer_id: str, key: str) -> Answer:
        body = request.json() or {}
        with self.lock:
            if customer_id not in self.customers:
                return Answer(404, {"message": "Customer not found."})
            token = self.tokens.get(str(body.get("token") or ""))
            if token is None or token["used"] or self.now().timestamp() > token["expires_at"]:
                return Answer(422, {"message": "The request is invalid.",
                                    "errors": {"token": ["The token is invalid, expired or already used."]}})
            token["used"] = True
            card = {"id": _id("card"), **token["card"], "status": "active", "type": "credit",
                    "customer": {"id": customer_id}, "created_at": self._now()}
            self.cards[card["id"]] = card
        answer = Answer(200, json.loads(json.dumps(card)))
        self.remember(key, request, answer)
        return answer

    def jwks(self) -> dict:
        keys = []
        with self.lock:
            for kid, private in self.keys.items():
                numbers = private.public_key().public_numbers()
                keys.append({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
                             "n": _b64url(numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big")),
                             "e": _b64url(numbers.e.to_bytes(3, "big"))})
        return {"keys": keys}

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            return False
        return secrets.compare_digest(user, self.secret_key) and password == ""

    def _found(self, obj: dict | None) -> Answer:
        if obj is None:
            return Answer(404, {"message": "Not found"})
        with self.lock:
            return Answer(200, json.loads(json.dumps(obj)))

    def _list_orders(self, request: Request) -> Answer:
        code = request.query.get("code")
        with self.lock:
            orders = [o for o in self.orders.values() if code is None or o["code"] == code]
            orders = json.loads(json.dumps(orders[::-1]))
        size = int(request.query.get("size", 10))
        return Answer(200, {"data": orders[:size], "paging": {"total": len(orders)}})

    def _validate(self, body) -> dict:
        errors = {}
        if not isinstance(body, dict):
            return {"body": ["The request is invalid."]}
        items = body.get("items")
        if not isinstance(items, list) or not items:
            errors["items"] = ["The items field is required."]
        else:
            for i, item in enumerate(items):
                for name in ("amount", "description", "quantity"):
                    if name not in item:
                        errors[f"items[{i}].{name}"] = [f"The {name} field is required."]
                if not isinstance(item.get("amount"), int) or isinstance(item.get("amount"), bool):
                    errors[f"items[{i}].amount"] = ["The amount must be an integer number of cents."]
        if not body.get("customer_id") and not isinstance(body.get("customer"), dict):
            errors["customer"] = ["The customer or customer_id field is required."]
        customer = body.get("customer") or {}
        if customer.get("document") and not str(customer["document"]).isalnum():
            errors["customer.document"] = ["The document must have only digits."]
        payments = body.get("payments")
        if not isinstance(payments, list) or len(payments) != 1:
            errors["payments"] = ["Exactly one payment is supported by this fake."]
        else:
            payment = payments[0]
            method = payment.get("payment_method")
            if method not in ("credit_card", "boleto", "pix"):
                errors["payments[0].payment_method"] = ["Invalid payment method."]
            elif method == "credit_card":
                card = payment.get("credit_card") or {}
                if not (card.get("card_id") or card.get("card_token") or card.get("card")):
                    errors["payments[0].credit_card"] = ["card_id, card_token or card is required."]
                if card.get("card_id") and not body.get("customer_id") and not body.get("customer"):
                    errors["customer_id"] = ["A stored card needs its customer."]
            elif method == "pix":
                for info in (payment.get("pix") or {}).get("additional_information") or []:
                    if not ({"name", "value"} <= set(info) or {"Name", "Value"} <= set(info)):
                        errors["payments[0].pix.additional_information"] = ["name and value are required."]
            if "amount" in payment and (not isinstance(payment["amount"], int) or payment["amount"] <= 0):
                errors["payments[0].amount"] = ["The amount must be a positive integer number of cents."]
        if body.get("closed") is not True:
            errors["closed"] = ["This fake only creates closed orders."]
        return errors

    def _create_order(self, request: Request, key: str) -> Answer:
        try:
            body = request.json()
        except ValueError:
            return Answer(400, {"message": "The request is invalid."})
        fault = self.take_fault()
        if fault == "timeout":
            return Answer(0, hang=True)
        if fault == "500":
            return Answer(500, {"message": "Internal server error."})
        errors = self._validate(body)
        if fault == "validation":
            errors = errors or {"customer.document": ["The document is invalid."]}
        if errors:
            return Answer(422, {"message": "The request is invalid.", "errors": errors})
        order = self._build_order(body, fault)
        answer = Answer(200, json.loads(json.dumps(order)))
        if fault == "500_after_charge":
            error = Answer(500, {"message": "An error has occurred."})
            self.remember(key, request, error if self.replay_errors else answer)
            return error
        self.remember(key, request, answer)
        if fault == "timeout_after_charge":
            return Answer(200, hang=True)
        return answer

    def _build_order(self, body: dict, fault: str) -> dict:
        now = self._now()
        amount = sum(i["amount"] * i.get("quantity", 1) for i in body["items"])
        payment = body["payments"][0]
        amount = payment.get("amount", amount)
        method = payment["payment_method"]
        customer = {"id": body.get("customer_id") or _id("cus"), **(body.get("customer") or {})}
        order_id, charge_id = _id("or"), _id("ch")
        transaction = {"id": _id("tran"), "transaction_type": method, "gateway_id": secrets.token_hex(6),
                       "amount": amount, "created_at": now, "updated_at": now, "metadata": {}}
        charge = {"id": charge_id, "code": body.get("code"), "gateway_id": secrets.token_hex(6), "amount": amount,
                  "paid_amount": 0, "canceled_amount": 0, "currency": "BRL", "payment_method": method,
                  "created_at": now, "updated_at": now, "customer": customer, "metadata": body.get("metadata") or {}}
        if method == "credit_card":
            card = payment.get("credit_card") or {}
            number = (card.get("card") or {}).get("number", "")
            if number == "4000000000000028" and not fault:
                fault = "decline"
            transaction.update(installments=card.get("installments", 1), operation_type="auth_and_capture",
                               statement_descriptor=card.get("statement_descriptor", ""),
                               acquirer_name="simulator", acquirer_tid=secrets.token_hex(6),
                               acquirer_nsu=str(secrets.randbelow(10**6)),
                               card={"id": card.get("card_id") or _id("card"), "last_four_digits": "0010"})
            if fault in DECLINES or fault == "antifraud":
                code, message = DECLINES.get(fault, ("00", "Transação negada pelo antifraude"))
                transaction.update(status="not_authorized", success=False, acquirer_return_code=code,
                                   acquirer_message=message,
                                   gateway_response={"code": "200", "errors": []})
                if fault == "antifraud":
                    transaction["antifraud_response"] = {"status": "reproved", "return_message": "reproved"}
                charge.update(status="failed")
            else:
                transaction.update(status="captured", success=True, acquirer_return_code="00",
                                   acquirer_message="Transação capturada com sucesso",
                                   acquirer_auth_code=str(secrets.randbelow(10**6)).zfill(6))
                charge.update(status="paid", paid_amount=amount, paid_at=now)
        elif method == "boleto":
            boleto = payment.get("boleto") or {}
            digits = "".join(str(secrets.randbelow(10)) for _ in range(47))
            transaction.update(status="generated", success=True,
                               url=f"{self.origin}/boleto/{charge_id}", pdf=f"{self.origin}/boleto/{charge_id}/pdf",
                               line=digits, barcode=f"{self.origin}/boleto/{charge_id}/barcode",
                               nosso_numero=str(secrets.randbelow(10**10)), bank="341",
                               document_number=boleto.get("document_number", ""),
                               instructions=boleto.get("instructions", ""),
                               due_at=boleto.get("due_at") or now)
            charge.update(status="pending", due_at=transaction["due_at"])
        else:
            pix = payment.get("pix") or {}
            expires_at = pix.get("expires_at") or time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.now().timestamp() + int(pix.get("expires_in", 86400))))
            transaction.update(status="waiting_payment", success=True,
                               qr_code=pix_emv(charge_id, f"{amount // 100}.{amount % 100:02d}"),
                               qr_code_url=f"{self.origin}/pix/{charge_id}.png", expires_at=expires_at,
                               additional_information=pix.get("additional_information") or [])
            charge.update(status="pending")
        charge["last_transaction"] = transaction
        order = {"id": order_id, "code": body.get("code"), "amount": amount, "currency": "BRL", "closed": True,
                 "items": body["items"], "customer": customer, "status": "pending", "charges": [],
                 "created_at": now, "updated_at": now, "closed_at": now, "metadata": body.get("metadata") or {}}
        with self.lock:
            charge["order"] = {"id": order_id, "code": order["code"], "status": "pending",
                               "metadata": order["metadata"]}
            self.orders[order_id] = order
            self.charges[charge_id] = charge
            self._sync_order(charge)
            return json.loads(json.dumps(order))

    def _sync_order(self, charge: dict):
        order = self.orders[charge["order"]["id"]]
        status = {"paid": "paid", "overpaid": "paid", "failed": "failed", "canceled": "canceled"}.get(
            charge["status"], "pending")
        order["status"] = charge["order"]["status"] = status
        order["updated_at"] = charge["updated_at"]
        order["charges"] = [{k: v for k, v in charge.items() if k != "order"}]

    def _cancel_charge(self, charge_id: str, request: Request) -> Answer:
        try:
            body = request.json() or {}
        except ValueError:
            return Answer(400, {"message": "The request is invalid."})
        with self.lock:
            charge = self.charges.get(charge_id)
            if charge is None:
                return Answer(404, {"message": "Charge not found."})
            now = self._now()
            transaction = charge["last_transaction"]
            if charge["status"] == "pending":
                charge.update(status="canceled", canceled_amount=charge["amount"], canceled_at=now)
                transaction["status"] = "voided" if charge["payment_method"] == "credit_card" else "canceled"
            elif charge["status"] in ("paid", "overpaid", "underpaid"):
                refundable = charge["paid_amount"] - charge["canceled_amount"]
                amount = body.get("amount", refundable)
                if not isinstance(amount, int) or amount <= 0 or amount > refundable:
                    return Answer(422, {"message": "The amount is invalid.", "errors": {"amount": ["invalid"]}})
                charge["canceled_amount"] += amount
                if charge["canceled_amount"] >= charge["paid_amount"]:
                    charge.update(status="canceled", canceled_at=now)
                    transaction["status"] = "refunded"
                else:
                    transaction["status"] = "partial_refunded"
            elif charge["status"] == "canceled":
                pass  # canceling twice changes nothing
            else:
                return Answer(422, {"message": f"Charge with status {charge['status']} can not be canceled."})
            charge["updated_at"] = now
            self._sync_order(charge)
            return Answer(200, json.loads(json.dumps(charge)))
