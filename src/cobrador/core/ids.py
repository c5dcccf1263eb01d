"""Public ids: a type prefix and 128 random bits, so ids are unguessable and say what they name."""

import os
import secrets
import threading

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


_pool = threading.local()
# A forked child must never hand out the bytes its parent's buffer still holds.
os.register_at_fork(after_in_child=lambda: _pool.__dict__.clear())


def _random_bits(n_bits: int) -> int:
    """`n_bits` random bits from the OS source, read 4 KiB at a time (per thread): a system call per id
    was a tenth of a sweep's id minting."""
    n_bytes = (n_bits + 7) // 8
    buffer, offset = getattr(_pool, "buffer", b""), getattr(_pool, "offset", 0)
    if offset + n_bytes > len(buffer):
        buffer, offset = secrets.token_bytes(4096), 0
        _pool.buffer = buffer
    _pool.offset = offset + n_bytes
    return int.from_bytes(buffer[offset:offset + n_bytes]) >> (8 * n_bytes - n_bits)


def random_token(n_chars: int = 22) -> str:
    # Random bits written in base 62: 22 characters carry 130 bits. (A secrets.choice per character
    # costs one system call each, 50 us an id: too slow for sweeps that mint 100k invoice and event ids.)
    value = _random_bits(int(n_chars * 5.954))  # log2(62) = 5.9542: value < 62 ** n_chars
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
