"""Certificates published for the TLS server: COBRADOR_CERT_DIR/<host>.fullchain.pem and <host>.key.pem,
mode 0600, each replaced atomically (written beside, fsynced, renamed over), so nginx never reads half a
file and the old pair keeps serving until the new one is in place. nginx reads both files at each
handshake (the variable form of ssl_certificate), so no reload is needed; only a handshake that falls
between the two renames (microseconds) can see the new key with the old chain and is refused once.
"""

import os
import tempfile
from pathlib import Path

from cryptography import x509
from django.conf import settings


def cert_dir() -> Path:
    path = Path(settings.CERT_DIR)
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def paths(hostname: str) -> tuple[Path, Path]:
    base = cert_dir()
    return base / f"{hostname}.fullchain.pem", base / f"{hostname}.key.pem"


def _write_private(directory: Path, content: str) -> str:
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".publish-")  # created 0600
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
    except BaseException:
        os.unlink(tmp)
        raise
    return tmp


def publish(hostname: str, fullchain_pem: str, key_pem: str) -> None:
    chain_path, key_path = paths(hostname)
    directory = chain_path.parent
    chain_tmp = _write_private(directory, fullchain_pem)
    key_tmp = _write_private(directory, key_pem)
    os.replace(key_tmp, key_path)
    os.replace(chain_tmp, chain_path)
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def unpublish(hostname: str) -> None:
    for path in paths(hostname):
        path.unlink(missing_ok=True)


def published_serial(hostname: str) -> str | None:
    chain_path, _ = paths(hostname)
    try:
        leaf = x509.load_pem_x509_certificate(chain_path.read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return format(leaf.serial_number, "x")
