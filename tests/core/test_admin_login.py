"""Brute force on the admin login (django-axes): wrong passwords lock the user name and the address
out, even for the right password, until the cool-off passes or an operator resets them; logged."""

import logging
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.models import User
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

RIGHT = "the-right-password-42"
ATTACKER, OPERATOR = "203.0.113.7", "198.51.100.20"


@pytest.fixture
def ops(db):
    return User.objects.create_superuser("ops", "ops@example.test", RIGHT)


def login(client, password, *, username="ops", address=ATTACKER):
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password},
                       REMOTE_ADDR=address)


def logged_in(client) -> bool:
    return client.get("/admin/").status_code == 200


def test_100_wrong_passwords_then_the_right_one_does_not_log_in_and_it_is_logged(ops, caplog):
    caplog.set_level(logging.WARNING)
    client = Client()
    for attempt in range(100):
        assert login(client, f"guess-{attempt}").status_code in (200, 429)

    response = login(client, RIGHT)
    assert response.status_code == 429
    assert not logged_in(client)
    # The user name is locked from another address too, and the address for another user name.
    assert login(Client(), RIGHT, address=OPERATOR).status_code == 429
    User.objects.create_superuser("other", "other@example.test", RIGHT)
    assert login(Client(), RIGHT, username="other").status_code == 429
    warnings = [r.getMessage() for r in caplog.records if r.name.startswith("axes") and r.levelno == logging.WARNING]
    assert any("locking out" in m.lower() and "ops" in m for m in warnings), warnings
    assert not any(RIGHT in r.getMessage() for r in caplog.records)


def test_the_lock_out_ends_after_the_cool_off(ops, settings):
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"guess-{attempt}")
    assert login(client, RIGHT).status_code == 429

    # The cool-off passes (axes compares attempt times with the wall clock).
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    login(client, RIGHT)
    assert logged_in(client)


@pytest.mark.parametrize("command, args", [("axes_reset", []), ("axes_reset_username", ["ops"])])
def test_an_operator_unlocks_with_a_management_command(ops, settings, command, args):
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT):
        login(client, f"guess-{attempt}", address=OPERATOR)
    assert login(client, RIGHT, address=OPERATOR).status_code == 429

    call_command(command, *args)
    if command == "axes_reset_username":
        call_command("axes_reset_ip", OPERATOR)  # the address is locked too
    login(client, RIGHT, address=OPERATOR)
    assert logged_in(client)


def test_a_few_mistakes_then_the_right_password_logs_in(ops, settings):
    client = Client()
    for attempt in range(settings.AXES_FAILURE_LIMIT - 1):
        login(client, f"guess-{attempt}")
    login(client, RIGHT)
    assert logged_in(client)
