"""Keys generated into the data directory on first run when the environment does not supply them.

Imported by settings, so it must not import Django.
"""

import base64
import os
import secrets
from pathlib import Path


def load_or_create_key(path: Path, kind: str) -> str:
    if path.exists():
        return path.read_text().strip()
    if kind == "fernet":
        value = base64.urlsafe_b64encode(os.urandom(32)).decode()
    else:
        value = secrets.token_urlsafe(50)
    # O_EXCL: two processes starting at once must end up with the same key, not two.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value
