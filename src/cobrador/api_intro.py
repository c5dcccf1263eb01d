"""The getting-started text that opens /v1/docs: docs/getting-started.md in short, for an integrator who
reads the API reference first. Kept beside urls.py, which appends it to the API's description."""

from cobrador.gateways.sandbox import SIGNATURE_HEADER as SANDBOX_SIGNATURE_HEADER
from cobrador.gateways.sandbox import TEST_CARD_TOKENS_DOC

GETTING_STARTED = f"""
## Getting started

1. `cobrador up` prints a test-mode key (`sk_test_...`); test-mode organizations pay through the built-in
   sandbox until you configure a provider at `/v1/gateways`.
2. `POST /v1/billing_accounts`, then `POST /v1/billing_accounts/{{id}}/payment_methods` (a card by its
   gateway token), `POST /v1/plans` and `POST /v1/subscriptions`. Invoices are written by the
   `invoice-generation` job and charged by `invoice-charging` (`cobrador jobs run NAME` runs one now).
3. `POST /v1/webhook_endpoints` with your URL: every change arrives signed per Standard Webhooks
   (`webhook-id`, `webhook-timestamp`, `webhook-signature`); verify it with any Standard Webhooks library
   and the endpoint's `whsec_` secret, e.g. Python's `standardwebhooks.Webhook(secret).verify(body, headers)`.

**Sandbox test cards** (a card payment method's `gateway_token`):

{TEST_CARD_TOKENS_DOC}

Sandbox boleto and PIX charges stay pending until `cobrador sandbox pay PAYMENT_ID` pays one and sends its
signed callback (`{SANDBOX_SIGNATURE_HEADER}: sha256=<hex>`).

**Provider callbacks** go to each gateway configuration's `callback_url`
(`/v1/callbacks/{{provider}}/{{token}}`): Pagar.me signs with `X-Webhook-Asymmetric-Signature` (RS256 over
the raw body, key from its JWKS), Kobana with `X-Kobana-Signature: sha256=<hex HMAC-SHA256 of the raw body
with the webhook_secret>`.

The guides (getting started, webhooks, callbacks, the dunning timeline, deployment) are in the repository's
`docs/` folder.
"""
