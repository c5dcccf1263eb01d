"""A fake Kobana on loopback, speaking the documented protocol (shared/reference/providers.md §2).

* `Authorization: Bearer <token>`; anything else is a 401 in Kobana's error envelope.
* `X-Idempotency-Key` on POST/PUT/PATCH (≤255 chars): the first answer is kept 24 h and replayed,
  **500s included**; other parameters with the same key are a 422 [U: the exact error]; a validation
  failure is not kept.
* v1 bank billets (bare objects; amounts in decimal reais; masked CPF/CNPJ required):
  `POST /v1/bank_billets` (flat or `{"bank_billet": {...}}`) answers 201 `generating`/`pending`;
  `register(id)` opens it (line, barcode); `GET`, list (`external_id`, `status`, `cnpj_cpf` filters),
  `PUT …/cancel` (204, only opened/overdue), `PUT …/pay` (204).
* v2 PIX (`{"status", "data"}` wrapped): `POST /v2/charge/pix` answers 201 with `qrcode.emv = null` and
  `registration_status: pending`; `register(uid)` fills the EMV; `GET`, list, `PUT …/cancel` (a Command).
* Rate-limit headers on every answer; with `get_limit` set, GETs beyond it in the hour are 429s.
* `send_callback(url, event_type, charge_id)` POSTs `{event_code, webhook, object, changes}` with
  `X-Kobana-Event`, `X-Kobana-Delivery-Id`, `X-Kobana-Environment`, `X-Kobana-Signature: sha256=<hex>`;
  retries only on 500, timeout or connection error, up to 7 times. `stable_delivery_ids` [U] keeps the
  delivery id across retries.

Faults (`fail_next(kind)`, for the next POST that creates a billet or PIX): `timeout_after_charge`,
`500_after_charge` (created; the 500 is what the idempotency cache replays), `timeout`, `500`
(nothing created), `validation` (422).
"""

import hashlib
import hmac
import json
import re
import secrets
import uuid
from decimal import Decimal

import httpx

from tests.fakes.http_fake import Answer, HttpFake, Request, pix_emv

CPF_MASK = re.compile(r"\d{3}\.\d{3}\.\d{3}-\d{2}")
CNPJ_MASK = re.compile(r"[0-9A-Z]{2}\.[0-9A-Z]{3}\.[0-9A-Z]{3}/[0-9A-Z]{4}-\d{2}")
BILLET_REQUIRED = ("amount", "expire_at", "customer_person_name", "customer_cnpj_cpf", "customer_zipcode",
                   "customer_address", "customer_neighborhood", "customer_city_name", "customer_state")


def _errors(status: int, code: str, title: str, detail: str = "", param: str = "") -> dict:
    error = {"title": title, "code": code, "detail": detail or title}
    if param:
        error["param"] = param
    return {"status": status, "errors": [error]}


def _reais_ok(value) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return value >= 0.01 and Decimal(str(value)) == Decimal(str(value)).quantize(Decimal("0.01"))


class FakeKobana(HttpFake):
    def __init__(self, api_token: str = "kobana-fake-token-0001", *, webhook_secret: str = "kobana-webhook-secret",
                 pix_account_uid: str = "7c9f0d2e-1b7a-4c1e-9d3b-5a8f0e6b2c11", get_limit: int | None = None,
                 stable_delivery_ids: bool = False, webhook_max_retries: int = 7, **kwargs):
        super().__init__(**kwargs)
        self.api_token = api_token
        self.webhook_secret = webhook_secret
        self.pix_account_uid = pix_account_uid
        self.get_limit = get_limit
        self.stable_delivery_ids = stable_delivery_ids
        self.webhook_max_retries = webhook_max_retries
        self.billets: dict[str, dict] = {}  # str(id) -> billet
        self.pixes: dict[str, dict] = {}  # uid -> pix
        self.deliveries: list[dict] = []
        self._next_id = 84512300
        self._gets_this_hour: tuple[str, int] = ("", 0)

    @property
    def url(self) -> str:
        """Where settings.KOBANA_BASE_URL points the adapter (paths /v1/... and /v2/... are under it)."""
        return self.origin

    # --- test helpers ---

    def charges_for(self, external_id: str) -> int:
        with self.lock:
            return sum(1 for o in [*self.billets.values(), *self.pixes.values()] if o.get("external_id") == external_id)

    def find(self, charge_id: str) -> dict:
        """A billet by its id or a PIX by its uid."""
        with self.lock:
            return self.billets.get(str(charge_id)) or self.pixes[charge_id]

    def register(self, charge_id: str) -> dict:
        """The bank confirms the registration: a billet opens with its line and barcode; a PIX gets its EMV."""
        with self.lock:
            obj = self.find(charge_id)
            now = self._now()
            obj["registration_status"] = "confirmed"
            obj["updated_at"] = now
            if charge_id in self.pixes:
                obj["qrcode"] = {"emv": pix_emv(obj["txid"], f"{Decimal(str(obj['amount'])):.2f}"),
                                 "png": "data:image/png;base64,iVBORw0KGgo="}
                obj["registered_at"] = now
            else:
                obj["status"] = "opened"
                obj["line"] = "".join(str(secrets.randbelow(10)) for _ in range(47))
                obj["barcode"] = "".join(str(secrets.randbelow(10)) for _ in range(44))
            return json.loads(json.dumps(obj))

    def pay(self, charge_id: str, amount_reais: float | None = None) -> dict:
        with self.lock:
            obj = self.find(charge_id)
            obj.update(status="paid", paid_amount=amount_reais if amount_reais is not None else obj["amount"],
                       paid_at=self._now() if charge_id in self.pixes else self.now().date().isoformat(),
                       updated_at=self._now())
            return json.loads(json.dumps(obj))

    def expire(self, charge_id: str) -> dict:
        """The due date passes unpaid: the billet or PIX becomes overdue (still payable)."""
        with self.lock:
            obj = self.find(charge_id)
            obj.update(status="overdue", updated_at=self._now())
            return json.loads(json.dumps(obj))

    def send_callback(self, url: str, event_type: str, charge_id: str, *, changes: dict | None = None,
                      secret: str | None = None, delivery_id: str | None = None) -> list[int | None]:
        """POST a signed callback about a billet or PIX; retried only on 500, timeouts and connection
        errors. Returns the status of each attempt (None: no answer)."""
        with self.lock:
            obj = json.loads(json.dumps(self.find(charge_id)))
        if changes is None and event_type.endswith(".paid"):
            changes = {"status": ["opened", "paid"], "paid_at": [None, obj.get("paid_at")]}
        body = json.dumps({"event_code": event_type,
                           "webhook": {"id": 1, "url": url, "first_try": self._now()},
                           "object": obj, "changes": changes or {}}).encode()
        signature = hmac.new((secret or self.webhook_secret).encode(), body, hashlib.sha256).hexdigest()
        stable_id = delivery_id or str(uuid.uuid4())
        statuses = []
        for _ in range(1 + self.webhook_max_retries):
            headers = {"Content-Type": "application/json", "User-Agent": "Kobana-Robot (sandbox)",
                       "X-Kobana-Event": event_type, "X-Kobana-Environment": "sandbox",
                       "X-Kobana-Delivery-Id": stable_id if (self.stable_delivery_ids or delivery_id)
                       else str(uuid.uuid4()),
                       "X-Kobana-Signature": f"sha256={signature}"}
            try:
                status = httpx.post(url, content=body, headers=headers, timeout=5.0).status_code
            except httpx.HTTPError:
                status = None
            statuses.append(status)
            self.deliveries.append({"url": url, "status": status, "body": body, "headers": headers})
            if status is not None and status != 500:
                break
        return statuses

    # --- the API ---

    def _now(self) -> str:
        return self.now().astimezone().isoformat(timespec="seconds")

    def _rate_headers(self, request: Request) -> dict | None:
        """Rate-limit headers; None when this GET is over the limit."""
        if request.method != "GET":
            return {"ratelimit-limit": "1000", "ratelimit-remaining": "999"}
        hour = self.now().strftime("%Y%m%d%H")
        with self.lock:
            seen_hour, count = self._gets_this_hour
            count = count + 1 if seen_hour == hour else 1
            self._gets_this_hour = (hour, count)
        limit = self.get_limit or 60
        if self.get_limit is not None and count > limit:
            return None
        return {"ratelimit-limit": str(limit), "ratelimit-remaining": str(max(0, limit - count))}

    def route(self, request: Request) -> Answer:
        header = request.headers.get("authorization", "")
        if not (header.startswith("Bearer ") and secrets.compare_digest(header[7:], self.api_token)):
            return Answer(401, _errors(401, "unauthorized", "Token de API inválido",
                                       "O token informado não é válido."))
        rate = self._rate_headers(request)
        if rate is None:
            return Answer(429, {"error": "Limite de requisições GET por hora excedido para esse usuário."},
                          {"retry-after": "3600", "ratelimit-name": "get"})
        answer = self._route(request)
        answer.headers = {**rate, **answer.headers}
        return answer

    def _route(self, request: Request) -> Answer:
        key = request.headers.get("x-idempotency-key", "") if request.method in ("POST", "PUT", "PATCH") else ""
        if len(key) > 255:
            return Answer(400, _errors(400, "bad_request", "X-Idempotency-Key maior que 255 caracteres"))
        if key:
            cached = self.cached(key, request)
            if cached is False:
                return Answer(422, _errors(422, "unprocessable_entity",
                                           "Parâmetros diferentes da requisição original para esta chave"))
            if cached is not None:
                return Answer(cached.status, cached.body, {"idempotent-replayed": "true"})
        parts = request.path.strip("/").split("/")
        answer = None
        if parts[:2] == ["v1", "bank_billets"]:
            answer = self._billets(request, parts[2:], key)
        elif parts[:3] == ["v2", "charge", "pix"]:
            answer = self._pix(request, parts[3:], key)
        if answer is None:
            return Answer(404, _errors(404, "not_found", "Não foi possível encontrar o registro"))
        return answer

    def _fault_then_create(self, request: Request, key: str, validate, create) -> Answer:
        try:
            body = request.json()
        except ValueError:
            return Answer(400, _errors(400, "bad_request", "JSON inválido"))
        fault = self.take_fault()
        if fault == "timeout":
            return Answer(0, hang=True)
        if fault == "500":
            answer = Answer(500, {"status": 500, "errors": [{"title": "Erro interno", "code": "internal_error"}]})
            self.remember(key, request, answer)  # Kobana keeps 500s too
            return answer
        errors = validate(body if isinstance(body, dict) else {})
        if fault == "validation" and not errors:
            errors = {"customer_cnpj_cpf": ["não é válido"]}
        if errors:
            return Answer(422, errors if "status" in errors else {"errors": errors, "status": 422})
        answer = create(body)
        if fault == "500_after_charge":
            answer = Answer(500, {"status": 500, "errors": [{"title": "Erro interno", "code": "internal_error"}]})
        self.remember(key, request, answer)
        if fault == "timeout_after_charge":
            return Answer(answer.status, hang=True)
        return answer

    # v1 bank billets

    def _billets(self, request: Request, rest: list[str], key: str) -> Answer | None:
        if request.method == "POST" and not rest:
            return self._fault_then_create(request, key, self._validate_billet, self._create_billet)
        if request.method == "GET" and not rest:
            with self.lock:
                rows = list(self.billets.values())
            for name in ("status", "external_id", "cnpj_cpf"):
                if name in request.query:
                    field = "customer_cnpj_cpf" if name == "cnpj_cpf" else name
                    rows = [r for r in rows if str(r.get(field)) == request.query[name]]
            per_page = int(request.query.get("per_page", 50))
            return Answer(200, json.loads(json.dumps(rows[::-1][:per_page])))
        billet = self.billets.get(rest[0]) if rest else None
        if billet is None:
            return None
        if request.method == "GET" and len(rest) == 1:
            with self.lock:
                return Answer(200, json.loads(json.dumps(billet)))
        if request.method == "PUT" and rest[1:] == ["cancel"]:
            with self.lock:
                if billet["status"] not in ("opened", "overdue"):
                    return Answer(422, _errors(422, "unprocessable_content",
                                               f"Boleto não pode ser cancelado para o status {billet['status']}"))
                billet.update(status="canceled", updated_at=self._now())
            answer = Answer(204)
            self.remember(key, request, answer)
            return answer
        if request.method == "PUT" and rest[1:] == ["pay"]:
            body = request.json() or {}
            with self.lock:
                billet.update(status="paid", paid_amount=body.get("paid_amount", billet["amount"]),
                              paid_at=body.get("paid_at") or self.now().date().isoformat(), updated_at=self._now())
            answer = Answer(204)
            self.remember(key, request, answer)
            return answer
        return None

    def _validate_billet(self, body: dict) -> dict:
        body = body.get("bank_billet", body)
        required = ("amount", "expire_at") if body.get("customer_id") else BILLET_REQUIRED
        errors = {name: ["não pode ficar em branco"] for name in required if body.get(name) in (None, "")}
        if "amount" in body and not _reais_ok(body["amount"]):
            errors["amount"] = ["deve ser um valor em reais com até 2 casas decimais"]
        document = str(body.get("customer_cnpj_cpf") or "")
        if document and not (CPF_MASK.fullmatch(document) or CNPJ_MASK.fullmatch(document)):
            errors["customer_cnpj_cpf"] = ["não é válido (use a máscara 000.000.000-00 ou 00.000.000/0000-00)"]
        zipcode = str(body.get("customer_zipcode") or "")
        if zipcode and not re.fullmatch(r"\d{8}", zipcode):
            errors["customer_zipcode"] = ["deve ter 8 dígitos"]
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", str(body.get("expire_at") or "0000-00-00")):
            errors["expire_at"] = ["não é uma data válida"]
        return errors

    def _create_billet(self, body: dict) -> Answer:
        body = body.get("bank_billet", body)
        now = self._now()
        with self.lock:
            self._next_id += 1
            billet_id = self._next_id
            uid = uuid.uuid4().hex.upper()
            billet = {**body, "id": billet_id, "uid": uid, "status": "generating", "registration_status": "pending",
                      "paid_at": None, "paid_amount": None, "line": None, "barcode": None,
                      "our_number": str(secrets.randbelow(10**8)), "url": f"{self.origin}/boletos/{uid}",
                      "shorten_url": f"{self.origin}/b/{uid[:8]}",
                      "formats": {"pdf": f"{self.origin}/boletos/{uid}.pdf"},
                      "pix_enabled": False, "pix_qrcode": None, "created_at": now, "updated_at": now}
            self.billets[str(billet_id)] = billet
            return Answer(201, json.loads(json.dumps(billet)))

    # v2 PIX

    def _pix(self, request: Request, rest: list[str], key: str) -> Answer | None:
        if request.method == "POST" and not rest:
            return self._fault_then_create(request, key, self._validate_pix, self._create_pix)
        if request.method == "GET" and not rest:
            with self.lock:
                rows = list(self.pixes.values())
            if "external_id" in request.query:
                rows = [r for r in rows if r.get("external_id") == request.query["external_id"]]
            return Answer(200, {"status": 200, "data": json.loads(json.dumps(rows[::-1]))})
        pix = self.pixes.get(rest[0]) if rest else None
        if pix is None:
            return None
        if request.method == "GET" and len(rest) == 1:
            with self.lock:
                return Answer(200, {"status": 200, "data": json.loads(json.dumps(pix))})
        if request.method == "PUT" and rest[1:] == ["cancel"]:
            with self.lock:
                if pix["status"] == "canceled":
                    return Answer(422, _errors(422, "change_pix_already_canceled", "Pix já cancelado"))
                if pix["status"] != "opened":
                    return Answer(422, _errors(422, "change_pix_expired",
                                               f"Pix não pode ser cancelado para o status {pix['status']}"))
                pix.update(status="canceled", canceled_at=self._now(), updated_at=self._now())
                command = {"id": secrets.randbelow(10**4), "uid": str(uuid.uuid4()), "status": "pending",
                           "operation": "cancel", "resource_type": "Pix", "resource_uid": pix["uid"],
                           "pix": json.loads(json.dumps(pix))}
            answer = Answer(200, {"status": 200, "data": command})
            self.remember(key, request, answer)
            return answer
        return None

    def _validate_pix(self, body: dict) -> dict:
        errors = []
        if not _reais_ok(body.get("amount")):
            errors.append({"code": "validation_error", "param": "amount", "detail": "Quantia não é válida"})
        if body.get("pix_account_uid") != self.pix_account_uid:
            errors.append({"code": "validation_error", "param": "pix_account_uid",
                           "detail": "Conta Pix não encontrada"})
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?([+-]\d{2}:\d{2}|Z)", str(body.get("expire_at"))):
            errors.append({"code": "validation_error", "param": "expire_at",
                           "detail": "Data de expiração deve ser ISO-8601 com fuso"})
        payer = body.get("payer")
        if payer is not None and not (payer.get("document_number") and payer.get("name")):
            errors.append({"code": "validation_error", "param": "payer", "detail": "Pagador incompleto"})
        return {"status": 422, "errors": errors} if errors else {}

    def _create_pix(self, body: dict) -> Answer:
        now = self._now()
        uid = str(uuid.uuid4())
        with self.lock:
            self._next_id += 1
            pix = {**body, "id": self._next_id, "uid": uid, "txid": uuid.uuid4().hex[:32], "status": "opened",
                   "registration_status": "pending", "kind": body.get("registration_kind", "instant"),
                   "qrcode": {"emv": None, "png": None}, "url": f"{self.origin}/pix/{uid}",
                   "paid_at": None, "paid_amount": None, "canceled_at": None, "registered_at": None,
                   "end_to_end_id": None, "created_at": now, "updated_at": now}
            self.pixes[uid] = pix
            return Answer(201, {"status": 201, "data": json.loads(json.dumps(pix))})
