"""Public ids: a type prefix and 128 random bits, so ids are unguessable and say what they name."""

import secrets

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def random_token(n_chars: int = 22) -> str:
    # One read of the OS random source written in base 62: 22 characters carry 130 bits. (A
    # secrets.choice per character costs one system call each, 50 us an id: too slow for sweeps
    # that mint 100k invoice and event ids.)
    value = secrets.randbits(int(n_chars * 5.954))  # log2(62) = 5.9542: value < 62 ** n_chars
    chars = []
    for _ in range(n_chars):
        value, digit = divmod(value, 62)
        chars.append(_ALPHABET[digit])
    return "".join(chars)


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
