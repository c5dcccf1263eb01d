"""The encryption key canary (core/startup.py): written at migration time, never written without first
decrypting a value already encrypted, so a first start with a wrong key refuses to start instead of
locking the right key out for good."""

import logging

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import transaction

from cobrador.core import crypto
from cobrador.core.models import EncryptionCanary
from cobrador.core.startup import CANARY_TEXT, StartupError, check_encryption_key
from tests.factories import make_org
from tests.gateways.conftest import make_config


def encrypted_rows_without_a_canary():
    """What `cobrador jobs run` or a bench leaves before any web or worker start: encrypted values and,
    before migrations wrote it, no canary."""
    organization = make_org("Cipherco", "test").organization
    with transaction.atomic():
        make_config(organization, "pagarme", ["card"], {"secret_key": "sk_test_right"})
    EncryptionCanary.objects.all().delete()


def canary_decrypts() -> bool:
    return crypto.decrypt(EncryptionCanary.objects.get().token) == CANARY_TEXT


def test_a_first_start_with_a_wrong_key_is_refused_and_the_right_key_still_starts(db, settings):
    right_key, wrong_key = settings.ENCRYPTION_KEY, Fernet.generate_key().decode()
    encrypted_rows_without_a_canary()

    settings.ENCRYPTION_KEY = wrong_key
    with pytest.raises(StartupError, match="COBRADOR_ENCRYPTION_KEY"):
        check_encryption_key()
    assert not EncryptionCanary.objects.exists()

    settings.ENCRYPTION_KEY = right_key
    check_encryption_key()
    assert canary_decrypts()

    settings.ENCRYPTION_KEY = wrong_key
    with pytest.raises(StartupError):
        check_encryption_key()


def test_a_database_with_nothing_encrypted_gets_its_canary_at_the_first_start(db):
    EncryptionCanary.objects.all().delete()
    check_encryption_key()
    assert canary_decrypts()


@pytest.mark.django_db(transaction=True)
def test_migrate_writes_the_canary(settings):
    EncryptionCanary.objects.all().delete()
    call_command("migrate", interactive=False, verbosity=0)
    assert canary_decrypts()


@pytest.mark.django_db(transaction=True)
def test_migrate_with_a_wrong_key_writes_no_canary_and_says_why(settings, caplog):
    right_key = settings.ENCRYPTION_KEY
    encrypted_rows_without_a_canary()

    settings.ENCRYPTION_KEY = Fernet.generate_key().decode()
    with caplog.at_level(logging.WARNING, logger="cobrador.core.startup"):
        call_command("migrate", interactive=False, verbosity=0)
    assert not EncryptionCanary.objects.exists()
    assert "COBRADOR_ENCRYPTION_KEY" in caplog.text

    settings.ENCRYPTION_KEY = right_key
    call_command("migrate", interactive=False, verbosity=0)
    assert canary_decrypts()
