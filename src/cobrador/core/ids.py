"""Public ids: a type prefix and 131 random bits, so ids are unguessable and say what they name."""

import os
import secrets
import threading

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
# A random byte below 248 (4 x 62) stands for one character, each equally likely; bytes of 248 and above
# are dropped (else the first eight characters would come up more often).
_CHAR_OF_BYTE = "".join(_ALPHABET[b % 62] for b in range(256)).encode("ascii")
_DROPPED = bytes(range(248, 256))

_pool = threading.local()
# A forked child must never hand out the bytes its parent's buffer still holds.
os.register_at_fork(after_in_child=lambda: _pool.__dict__.clear())


def _random_bytes(n: int) -> bytes:
    """`n` random bytes from the OS source, read 4 KiB at a time (per thread): a system call per id
    was a tenth of a sweep's id minting."""
    buffer, offset = getattr(_pool, "buffer", b""), getattr(_pool, "offset", 0)
    if offset + n > len(buffer):
        buffer, offset = secrets.token_bytes(4096), 0
        _pool.buffer = buffer
    _pool.offset = offset + n
    return buffer[offset:offset + n]


def random_token(n_chars: int = 22) -> str:
    """`n_chars` random base-62 characters (22 carry 131 bits), mapped from random bytes in C: a
    secrets.choice per character cost a system call each, and base-62 digits of a big integer a
    Python loop, both a large part of minting a sweep's 100k ids."""
    chars = b""
    while len(chars) < n_chars:
        chars += _random_bytes(n_chars + 4).translate(_CHAR_OF_BYTE, _DROPPED)
    return chars[:n_chars].decode("ascii")


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
