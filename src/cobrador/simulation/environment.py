"""Where a simulation keeps its data. Imported before Django is set up, so it must not import Django.

Settings are read once, at setup: `prepare` points COBRADOR_DATA_DIR at the simulation's own directory
(its database file, keys and the mails it sends live there) and COBRADOR_DATABASE_URL at its own SQLite
file unless a database URL is given. COBRADOR_EMAIL_URL is dropped so that no mail of the demo
customers can leave the machine: every mail is kept as an .eml file in <directory>/mails.
"""

import os
from datetime import UTC, datetime
from pathlib import Path

SQLITE_NAME = "cobrador.sqlite3"


def default_directory() -> Path:
    base = Path(os.environ.get("COBRADOR_DATA_DIR", ".cobrador"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = base / "simulations" / stamp
    n = 1
    while directory.exists():
        n += 1
        directory = base / "simulations" / f"{stamp}-{n}"
    return directory


def prepare(*, directory: str | None = None, database: str | None = None) -> Path:
    """Create the simulation's directory and point this process's settings at it (call before setup)."""
    path = (Path(directory) if directory else default_directory()).resolve()
    path.mkdir(parents=True, exist_ok=True)
    os.environ["COBRADOR_DATA_DIR"] = str(path)
    os.environ["COBRADOR_DATABASE_URL"] = database or f"sqlite:///{path / SQLITE_NAME}"
    os.environ.pop("COBRADOR_EMAIL_URL", None)
    # Only warnings and errors: the simulation prints its own account of what happened.
    os.environ.setdefault("COBRADOR_LOG_LEVEL", "WARNING")
    # A second payment-retry thread overlaps one batch's gateway calls with another's database work; the
    # sandbox answers in-process, so here it only adds a thread and a connection per run (~7% of the time).
    os.environ.setdefault("COBRADOR_DUNNING_SWEEP_THREADS", "1")
    return path
