"""A mail backend for running without an SMTP server: each message becomes one .eml file."""

import email.policy
import os
import re
from pathlib import Path

from django.core.mail.backends.base import BaseEmailBackend

from cobrador.core import clock


class EmlFileBackend(BaseEmailBackend):
    """Writes every message to `file_path`/<UTC time>-<Message-ID>.eml, one file per message, in the
    standard format any mail program opens (double-click it)."""

    def __init__(self, *args, file_path: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        if not file_path:
            from django.conf import settings

            file_path = str(settings.DATA_DIR / "mails")
        self.file_path = Path(file_path)

    def open(self):
        self.file_path.mkdir(parents=True, exist_ok=True)
        return False

    def close(self):
        pass

    def send_messages(self, email_messages) -> int:
        self.open()
        sent = 0
        for message in email_messages:
            if not message.recipients():
                continue
            mime = message.message(policy=email.policy.default)
            message_id = re.sub(r"[^A-Za-z0-9._@-]", "", str(mime.get("Message-ID", ""))) or os.urandom(8).hex()
            stamp = clock.wall_now().strftime("%Y%m%dT%H%M%S%fZ")  # when it was written, for sorting
            path = self.file_path / f"{stamp}-{message_id}.eml"
            temporary = path.with_suffix(".eml.tmp")
            temporary.write_bytes(mime.as_bytes())
            temporary.replace(path)
            sent += 1
        return sent
