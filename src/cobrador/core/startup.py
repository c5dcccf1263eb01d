"""Checks made when a process starts, before it serves or works, and the encryption key canary.

The canary is a known text encrypted with the key: a process started with another key finds it does
not decrypt and refuses to start, before it reads or writes anything encrypted. It is written at
migration time (post_migrate) or, on a database migrated before it existed, at the first start; and
never without first decrypting a value already encrypted in the database, if there is one: a first
start with a wrong key must not crown that key and lock the right one out for good.
"""

import logging

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from cobrador.core import crypto
from cobrador.core.models import EncryptionCanary

logger = logging.getLogger(__name__)

CANARY_TEXT = "cobrador-encryption-canary"
WRONG_KEY = ("this database holds values encrypted with another encryption key. Set COBRADOR_ENCRYPTION_KEY "
             "(or restore <data dir>/encryption_key) to the key it was created with.")


class StartupError(RuntimeError):
    pass


def check_encryption_key(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Fail fast when the database holds values encrypted with a key we do not have."""
    canary = EncryptionCanary.objects.using(using).first()
    if canary is None:
        write_canary(using=using)
        return
    try:
        ok = crypto.decrypt(canary.token) == CANARY_TEXT
    except crypto.EncryptionKeyMismatch:
        ok = False
    if not ok:
        raise StartupError(WRONG_KEY)


def write_canary(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """Write the canary unless there is one. An encrypted value already in the database must decrypt
    with our key first (StartupError otherwise, and nothing is written)."""
    with transaction.atomic(using=using):
        if EncryptionCanary.objects.using(using).exists():
            return
        sample = an_encrypted_value(using=using)
        if sample is not None:
            try:
                crypto.decrypt(sample)
            except crypto.EncryptionKeyMismatch:
                raise StartupError(WRONG_KEY) from None
        EncryptionCanary.objects.using(using).create(token=crypto.encrypt(CANARY_TEXT))


def an_encrypted_value(*, using: str = DEFAULT_DB_ALIAS) -> str | None:
    """One stored Fernet token from any encrypted column, as stored (not decrypted), or None."""
    connection = connections[using]
    tables = set(connection.introspection.table_names())
    quote = connection.ops.quote_name
    for model in apps.get_models():
        if model._meta.db_table not in tables or model is EncryptionCanary:
            continue
        for field in model._meta.concrete_fields:
            if isinstance(field, crypto.EncryptedTextField):
                column, table = quote(field.column), quote(model._meta.db_table)
                with connection.cursor() as cursor:
                    cursor.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL "  # noqa: S608
                                   f"AND {column} <> '' LIMIT 1")
                    row = cursor.fetchone()
                if row is not None:
                    return row[0]
    return None


def write_canary_after_migrate(sender, using=DEFAULT_DB_ALIAS, **kwargs) -> None:
    """post_migrate: the canary is written when the schema is, not left to the first web or worker start."""
    if EncryptionCanary._meta.db_table not in connections[using].introspection.table_names():
        return  # core's tables were migrated away (migrate core zero)
    try:
        write_canary(using=using)
    except StartupError:
        logger.warning("the encryption key canary was not written: %s", WRONG_KEY)
