"""A real SMTP server (aiosmtpd) on loopback that keeps every message it accepts.

Tests script its behaviour:
    server.reply_next_data("451 4.3.0 Try again later")   # the next DATA gets this reply, nothing is kept
    server.refuse("bounce@example.com", "550 5.1.1 No such user")  # RCPT TO refused for that address
    server.stall_next_data()  # the next DATA hangs until release() or the client goes away (then it
                              # is not kept: the client never saw a 250)
and read `messages` (parsed with the modern email policy), `connections` (one per EHLO/HELO) and
`wait_for(n)`.

Run as a script it is the benchmark's sink: `python tests/fakes/smtp.py` prints its port, accepts
everything (keeping only Message-IDs) and on SIGTERM prints {"received": n, "unique_message_ids": m}.
"""

import asyncio
import email
import email.policy
import json
import logging
import re
import signal
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass

from aiosmtpd.controller import Controller

logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every connection at INFO


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)

    @property
    def message_id(self) -> str:
        return str(self.message["Message-ID"])


class _Handler:
    def __init__(self, server: "SmtpServer"):
        self.server = server

    async def handle_EHLO(self, smtp, session, envelope, hostname, responses):
        self.server.connections += 1
        session.host_name = hostname
        return responses

    async def handle_HELO(self, smtp, session, envelope, hostname):
        self.server.connections += 1
        session.host_name = hostname
        return f"250 {smtp.hostname}"

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        refusal = self.server.refusals.get(address.lower())
        if refusal:
            return refusal
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp, session, envelope):
        server = self.server
        with server.lock:
            reply = server.data_replies.popleft() if server.data_replies else None
            stall = server.stalls > 0
            if stall:
                server.stalls -= 1
                server.stalled.set()
        if stall:
            while not server.released.is_set():
                if smtp.transport is None or smtp.transport.is_closing():
                    return "421 4.4.2 Connection lost"  # nobody hears it; the message is not kept
                await asyncio.sleep(0.02)
        if reply:
            return reply
        data = envelope.original_content or envelope.content
        with server.lock:
            if server.keep_messages:
                server.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), data, time.time()))
            else:
                found = _MESSAGE_ID.search(data)
                server.message_ids.append(found.group(1) if found else b"")
        return "250 2.0.0 Message accepted for delivery"


class _Controller(Controller):
    def _trigger_server(self):
        self.port = self.server.sockets[0].getsockname()[1]  # we bound port 0: learn the real one
        super()._trigger_server()


_MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]*>)", re.IGNORECASE | re.MULTILINE)


class SmtpServer:
    def __init__(self, keep_messages: bool = True):
        self.keep_messages = keep_messages  # False: keep only each message's Message-ID (the benchmark sink)
        self.message_ids: list[bytes] = []
        self.messages: list[ReceivedMail] = []
        self.connections = 0
        self.data_replies: deque[str] = deque()
        self.refusals: dict[str, str] = {}
        self.stalls = 0
        self.stalled = threading.Event()
        self.released = threading.Event()
        self.lock = threading.Lock()
        self._controller = _Controller(_Handler(self), hostname="127.0.0.1", port=0, decode_data=False,
                                       data_size_limit=10_000_000)

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._controller.port

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def start(self) -> "SmtpServer":
        self._controller.start()
        return self

    def stop(self) -> None:
        self.released.set()
        if self._controller._thread is not None:
            self._controller.stop()

    def reply_next_data(self, *replies: str) -> None:
        self.data_replies.extend(replies)

    def refuse(self, address: str, reply: str = "550 5.1.1 No such user") -> None:
        self.refusals[address.lower()] = reply

    def stall_next_data(self, count: int = 1) -> None:
        self.stalls += count

    def release(self) -> None:
        self.released.set()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} e-mails, the SMTP server has {len(self.messages)}")

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.messages if address in m.rcpt_tos]


def _serve_sink() -> None:
    server = SmtpServer(keep_messages=False).start()
    print(server.port, flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()
    with server.lock:
        ids = list(server.message_ids)
    print(json.dumps({"received": len(ids), "unique_message_ids": len(set(ids))}), flush=True)
    server.stop()


if __name__ == "__main__":
    sys.exit(_serve_sink())
