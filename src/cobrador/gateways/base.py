"""What billing needs from a payment provider, whatever the provider.

Adapters (sandbox, pagarme, kobana) implement `Gateway`. Amounts are always integer minor units here;
an adapter converts (Kobana takes decimal reais). Every call that creates or changes something at the
provider carries `idempotency_key`, so a retried call can never create a second charge. An outcome the
adapter cannot know (timeout, connection reset, 5xx after sending) is `status="unknown"`: the caller
reconciles later with `find_charge`, never by charging again.
"""

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Literal, Protocol

Method = Literal["card", "bank_slip", "pix"]
# succeeded/failed: final for a card; pending: a boleto/PIX issued and waiting for its payment;
# unknown: the request may or may not have taken effect at the provider.
ChargeStatus = Literal["succeeded", "failed", "pending", "unknown", "canceled", "refunded"]


@dataclass(frozen=True)
class Customer:
    name: str
    email: str
    document: str  # CPF/CNPJ, normalized (no mask)
    document_type: str  # "cpf" | "cnpj" | ""
    address: dict  # street, number, complement, neighborhood, city, state, zipcode, country
    reference: str  # our billing account public id


@dataclass(frozen=True)
class ChargeRequest:
    idempotency_key: str
    reference: str  # our payment public id, sent as the provider's code / external_id
    amount: int
    currency: str
    method: Method
    description: str
    customer: Customer
    card_token: str = ""  # for cards: the gateway's stored-card token
    due_date: date | None = None  # boleto
    expires_at: datetime | None = None  # PIX
    metadata: dict = field(default_factory=dict)


@dataclass
class ChargeResult:
    status: ChargeStatus
    provider_charge_id: str = ""
    provider_order_id: str = ""
    amount_paid: int = 0
    paid_at: datetime | None = None
    failure_code: str = ""
    failure_message: str = ""
    decline_class: Literal["hard", "soft", ""] = ""
    # boleto
    boleto_url: str = ""
    boleto_barcode: str = ""
    boleto_line: str = ""  # linha digitável
    # PIX
    pix_copy_paste: str = ""  # EMV "copia e cola"
    pix_qr_code_url: str = ""
    expires_at: datetime | None = None
    raw: dict = field(default_factory=dict)


@dataclass(frozen=True)
class StoredCard:
    """A card the provider stored from a one-time browser token: what a card payment method keeps."""

    gateway_token: str  # what charge_card takes later (Pagar.me: cus_...:card_...)
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True)
class CallbackEvent:
    """A provider callback, parsed. `status` is what the callback says the charge is now."""

    event_id: str  # dedupe key: (provider, event_id) is unique
    event_type: str  # the provider's name, e.g. "charge.paid", "bank_billet.paid"
    provider_charge_id: str
    reference: str  # our payment public id when the provider echoes it (code / external_id)
    status: ChargeStatus | None  # None: an event we store but that changes no payment
    amount_paid: int = 0
    paid_at: datetime | None = None
    raw: dict = field(default_factory=dict)


class GatewayError(Exception):
    """A request the provider refused before doing anything (bad credentials, validation): safe to retry."""


class Gateway(Protocol):
    """What every provider adapter does. Two more methods are optional: `store_card(*, token, customer)
    -> StoredCard`, for providers that tokenize cards in the customer's browser (the card update page);
    and `charge_many(requests) ->
    list[ChargeResult | GatewayError]`, the three charge calls for many requests at once (each by its
    request's method). A provider that has it (the sandbox, which is no network call away) gets a batch
    of payments in one call instead of one call per payment in the thread pool."""

    provider: str

    def charge_card(self, request: ChargeRequest) -> ChargeResult: ...

    def issue_boleto(self, request: ChargeRequest) -> ChargeResult: ...

    def issue_pix(self, request: ChargeRequest) -> ChargeResult: ...

    def fetch_charge(self, *, method: Method, provider_charge_id: str) -> ChargeResult: ...

    def find_charge(self, *, method: Method, reference: str, idempotency_key: str) -> ChargeResult | None:
        """Look a charge up by our reference when its provider id is not known (an unknown outcome)."""
        ...

    def cancel_charge(self, *, method: Method, provider_charge_id: str, idempotency_key: str) -> ChargeResult: ...

    def refund(self, *, method: Method, provider_charge_id: str, amount: int, idempotency_key: str) -> ChargeResult: ...

    def verify_callback(self, *, headers: dict[str, str], body: bytes) -> bool:
        """Headers arrive lower-cased."""
        ...

    def parse_callback(self, *, headers: dict[str, str], body: bytes) -> CallbackEvent | None:
        """None for event types we do not handle (stored as ignored)."""
        ...
