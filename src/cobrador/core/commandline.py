"""What every `cobrador` command shares: the error a command raises to stop with a message, Django's
set-up, the encryption-key check, migrating, and reading an `--at` time.

Imported by `cobrador.cli` before Django is set up, so it imports nothing of Django at the top.
"""

import os
from datetime import UTC, datetime


class CommandFailed(Exception):
    """A command cannot do what it was asked: the CLI prints the message on one line and exits with 2."""


def setup_django() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cobrador.settings")
    # Deferred: importing this module must not read settings (`cobrador simulate` sets the environment first).
    import django
    from django.apps import apps

    if not apps.ready:  # a process that is already set up (tests) keeps its set-up
        django.setup()


def check_encryption_key() -> None:
    """Stop with a clear message when the database was encrypted with another key."""
    # Deferred: core.startup imports models, which need Django set up.
    from cobrador.core.startup import StartupError
    from cobrador.core.startup import check_encryption_key as check

    try:
        check()
    except StartupError as exc:
        raise CommandFailed(str(exc)) from exc


def migrate(verbosity: int = 0) -> None:
    from django.core.management import call_command  # deferred with Django's set-up, as above

    call_command("migrate", interactive=False, verbosity=verbosity)


def parse_at(value: str, option: str = "--at") -> datetime:
    """An ISO-8601 time given on the command line; UTC when it names no offset."""
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise CommandFailed(f"{option} {value!r} is not an ISO-8601 time (e.g. 2026-12-01T01:00:00Z)") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)
