"""Checks made when a process starts, before it serves or works."""

from django.db import transaction

from cobrador.core import crypto
from cobrador.core.models import EncryptionCanary

CANARY_TEXT = "cobrador-encryption-canary"


class StartupError(RuntimeError):
    pass


def check_encryption_key() -> None:
    """Fail fast when the database holds values encrypted with a key we do not have."""
    with transaction.atomic():
        canary = EncryptionCanary.objects.first()
        if canary is None:
            EncryptionCanary.objects.create(token=crypto.encrypt(CANARY_TEXT))
            return
    try:
        ok = crypto.decrypt(canary.token) == CANARY_TEXT
    except crypto.EncryptionKeyMismatch:
        ok = False
    if not ok:
        raise StartupError(
            "this database holds values encrypted with another encryption key. Set "
            "COBRADOR_ENCRYPTION_KEY (or restore <data dir>/encryption_key) to the key it was created with."
        )
