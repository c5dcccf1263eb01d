"""The e-mail a notice becomes: multipart/alternative, text then HTML, with fixed headers.

`NoticeEmail` is a Django EmailMultiAlternatives, sent by any Django mail backend (SMTP, the .eml
file backend, locmem in tests). Only its `message()` is its own: Django 6 builds messages with the
modern email policy, which parses and refolds every header and costs about 3 ms per message, more
than rendering, sending and recording a notice together; the classic MIME classes still spend a
millisecond folding headers. A notice's mail always has the same simple shape, so it is written out
directly: ASCII headers as they are, non-ASCII ones as RFC 2047 encoded words (folded by
email.header), bodies as 8bit UTF-8, or base64 when a line is longer than SMTP allows.
"""

import base64
import email.policy
import secrets
from email.header import Header
from email.utils import formataddr

from django.core.mail import EmailMultiAlternatives

MAX_LINE_BYTES = 998  # RFC 5322


def _one_line(value: str) -> str:
    if "\r" in value or "\n" in value:
        raise ValueError(f"a header value must be one line: {value[:80]!r}")
    return value


def address(display_name: str, addr: str) -> str:
    """'Name <addr>' with a non-ASCII name as an encoded word (never the address part), and a non-ASCII
    domain in IDNA. A non-ASCII local part cannot be written without SMTPUTF8: ValueError."""
    local, _, domain = _one_line(addr).rpartition("@")
    if not local or not local.isascii() or not domain:
        raise ValueError(f"cannot address {addr!r}")
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return formataddr((" ".join(display_name.split()), f"{local}@{domain}"), charset="utf-8")


def _header_line(name: str, value: str, linesep: str) -> str:
    value = _one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= MAX_LINE_BYTES:
        return f"{name}: {value}{linesep}"
    encoded = Header(value, "utf-8" if not value.isascii() else "us-ascii", header_name=name).encode(
        linesep=linesep)
    return f"{name}: {encoded}{linesep}"


def _body(text: str, linesep: str) -> tuple[str, bytes]:
    """(Content-Transfer-Encoding, encoded body) with `linesep` line ends."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if all(len(line) * 4 <= MAX_LINE_BYTES or len(line.encode()) <= MAX_LINE_BYTES for line in lines):
        return "8bit", linesep.join(lines).encode("utf-8")
    raw = base64.encodebytes("\r\n".join(lines).encode("utf-8"))  # 76-character lines ending in \n
    return "base64", raw.replace(b"\n", linesep.encode())


class PreparedMessage:
    """The finished bytes, with the part of email.message.Message that mail backends use."""

    def __init__(self, data: bytes, headers: dict[str, str]):
        self._data = data
        self._headers = {name.lower(): value for name, value in headers.items()}

    def as_bytes(self, unixfrom: bool = False, policy=None) -> bytes:
        return self._data

    def as_string(self, unixfrom: bool = False, policy=None) -> str:
        return self._data.decode("utf-8", "surrogateescape")

    __bytes__ = as_bytes
    __str__ = as_string

    def get(self, name: str, default=None):
        return self._headers.get(name.lower(), default)

    def __getitem__(self, name: str):
        return self.get(name)


class NoticeEmail(EmailMultiAlternatives):
    def message(self, *, policy=email.policy.default) -> PreparedMessage:
        """Built once per line ending (the drainer builds it before sending: bad addresses fail early)."""
        cache = self.__dict__.setdefault("_prepared", {})
        if policy.linesep not in cache:
            cache[policy.linesep] = self._prepare(policy.linesep)
        return cache[policy.linesep]

    def _prepare(self, linesep: str) -> PreparedMessage:  # SMTP asks for CRLF line ends, files for LF
        parts = [(self.body, "text/plain"), *((content, mimetype) for content, mimetype in self.alternatives)]
        encoded = [(mimetype, *_body(content, linesep)) for content, mimetype in parts]
        boundary = f"=_cobrador_{secrets.token_hex(12)}"
        while any(boundary.encode() in body for _, _, body in encoded):
            boundary = f"=_cobrador_{secrets.token_hex(12)}"
        headers = {"Subject": str(self.subject), "From": str(self.from_email),
                   "To": ", ".join(address("", to) for to in self.to)}
        if self.reply_to:
            headers["Reply-To"] = ", ".join(self.reply_to)
        headers.update({name: str(value) for name, value in self.extra_headers.items()})
        headers.update({"MIME-Version": "1.0", "Content-Type": f'multipart/alternative; boundary="{boundary}"'})
        head = "".join(_header_line(name, value, linesep) for name, value in headers.items())
        chunks = [head.encode("ascii"), linesep.encode()]
        for mimetype, transfer_encoding, body in encoded:
            chunks.append(f"--{boundary}{linesep}Content-Type: {mimetype}; charset=\"utf-8\"{linesep}"
                          f"Content-Transfer-Encoding: {transfer_encoding}{linesep}{linesep}".encode("ascii"))
            chunks += [body, linesep.encode()]
        chunks.append(f"--{boundary}--{linesep}".encode("ascii"))
        return PreparedMessage(b"".join(chunks), headers)
