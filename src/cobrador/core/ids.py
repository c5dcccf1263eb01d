"""Public ids: a type prefix and 128 random bits, so ids are unguessable and say what they name."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def random_token(n_chars: int = 22) -> str:
    # 22 base-62 characters carry 130 bits.
    return "".join(secrets.choice(_ALPHABET) for _ in range(n_chars))


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{random_token()}"


def public_id_default(prefix: str):
    """A model field default that mints an id with `prefix` (migrations need a named callable)."""
    return _PublicIdFactory(prefix)


class _PublicIdFactory:
    def __init__(self, prefix: str):
        self.prefix = prefix

    def __call__(self) -> str:
        return new_public_id(self.prefix)

    def deconstruct(self):
        return ("cobrador.core.ids._PublicIdFactory", (self.prefix,), {})
