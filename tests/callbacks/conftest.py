# The gateway tests' provider fakes (Pagar.me and Kobana on loopback), for the callbacks from them.
from tests.gateways.conftest import kobana, pagarme  # noqa: F401
