"""Encryption at rest (Fernet) for secrets the system must read back: webhook signing secrets,
provider credentials, private keys. API keys are never stored this way: they are hashed."""

import hashlib
import hmac
import json

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

_fernet: tuple[str, Fernet] | None = None  # (the key, its Fernet): a changed setting is picked up


class EncryptionKeyMismatch(RuntimeError):
    pass


def fernet() -> Fernet:
    global _fernet
    key = settings.ENCRYPTION_KEY
    if _fernet is None or _fernet[0] != key:
        _fernet = (key, Fernet(key.encode()))
    return _fernet[1]


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise EncryptionKeyMismatch(
            "a value in the database was encrypted with another key: set COBRADOR_ENCRYPTION_KEY "
            "to the key this database was created with"
        ) from exc


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def constant_time_equals(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


class EncryptedTextField(models.TextField):
    """A text column holding a Fernet token; Python code sees the plaintext."""

    def from_db_value(self, value, expression, connection):
        if value is None or value == "":
            return value
        return decrypt(value)

    def get_prep_value(self, value):
        if value is None or value == "":
            return value
        return encrypt(str(value))


class EncryptedJSONField(EncryptedTextField):
    def from_db_value(self, value, expression, connection):
        plain = super().from_db_value(value, expression, connection)
        return json.loads(plain) if plain else {}

    def get_prep_value(self, value):
        return super().get_prep_value(json.dumps(value or {}, sort_keys=True))

    def to_python(self, value):
        if isinstance(value, str):
            return json.loads(value) if value else {}
        return value
