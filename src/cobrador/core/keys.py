"""Keys generated into the data directory on first run when the environment does not supply them, and
the checks that make a bad data directory or a malformed key one clear line at start.

Imported by settings, so it must not import Django.
"""

import base64
import binascii
import os
import secrets
from pathlib import Path


class ConfigurationError(Exception):
    """The environment or the data directory cannot work. Its message is one line for the operator;
    `cobrador` prints it instead of a traceback."""


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def is_writable_dir(path: Path) -> bool:
    """Writable by this process: permissions, and (for root, whom permissions do not stop) a file system
    mounted read-write."""
    try:
        read_only = bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False
    return path.is_dir() and not read_only and os.access(path, os.W_OK | os.X_OK)


def prepare_data_dir(path: Path) -> Path:
    """The data directory, created when missing (with its parents)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"the data directory {path} does not exist and cannot be created ({_reason(exc)}): create it, "
            "writable by this user, or set COBRADOR_DATA_DIR to a writable directory") from None
    return path


def require_writable_dir(path: Path, *, needed_for: str) -> None:
    if not is_writable_dir(path):
        raise ConfigurationError(
            f"the directory {path} is not writable and is needed for {needed_for}: make it writable by this "
            "user or set COBRADOR_DATA_DIR to a writable directory")


def prepare_subdir(path: Path, *, needed_for: str) -> Path:
    try:
        path.mkdir(exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"the directory {path} cannot be created ({_reason(exc)}) and is needed for {needed_for}: make "
            f"{path.parent} writable by this user or set COBRADOR_DATA_DIR to a writable directory") from None
    return path


def load_or_create_key(path: Path, kind: str, *, variable: str = "") -> str:
    """The key stored at `path`, generated there on first run. `variable` names the environment
    variable that would supply it instead (for the error message)."""
    instead = f" or set {variable}" if variable else ""
    try:
        if path.exists():
            return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the key file {path} ({_reason(exc)}): make it readable by this "
                                 f"user{instead}") from None
    if kind == "fernet":
        value = base64.urlsafe_b64encode(os.urandom(32)).decode()
    else:
        value = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting at once must end up with the same key, not two.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    except OSError as exc:
        raise ConfigurationError(
            f"cannot create the key file {path} ({_reason(exc)}): the data directory {path.parent} must be "
            f"writable on first run{instead}") from None
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def check_fernet_key(value: str, *, source: str) -> str:
    """`value` if it is a Fernet key (32 url-safe base64-encoded bytes), else a ConfigurationError naming
    where it came from. Checked at start, so no worker meets it first in the middle of a task."""
    try:
        valid = len(base64.urlsafe_b64decode(value.encode())) == 32
    except (binascii.Error, ValueError, UnicodeEncodeError):
        valid = False
    if not valid:
        raise ConfigurationError(
            f"{source} is not a valid encryption key (a Fernet key: 32 url-safe base64-encoded bytes, as "
            "`python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'` "
            "prints); set it to the key this database was created with")
    return value
