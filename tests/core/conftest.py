# The webhook tests' fixtures (an endpoint with its receiver), for the outbox and idempotency tests.
from tests.webhooks.conftest import hook, second_receiver  # noqa: F401
