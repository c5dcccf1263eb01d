"""A webhook receiver on loopback that verifies every request with the `standardwebhooks` package.

Tests script its answers (status, headers, delay, a byte at a time) and read what it received and whether each
signature verified against the secrets it was given.
"""

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 overflows when a worker's 16 senders connect at once, and a
    # connection dropped from it fails with "connection reset by peer" about a second later.
    request_queue_size = 128


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes
    at: float
    verified_with: list[str] = field(default_factory=list)  # which known secrets verify it

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Answer:
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b'{"ok":true}'
    # Seconds between bytes: the answer goes out a byte at a time, from its status line on (or, with
    # trickle_body_only, after its headers), each byte well within a read timeout.
    trickle: float = 0.0
    trickle_body_only: bool = False


class WebhookReceiver:
    def __init__(self):
        self.secrets: list[str] = []
        self.received: list[Received] = []
        self.answers: deque[Answer] = deque()  # scripted answers, then `default`
        self.default = Answer()
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        # A short poll interval: stop() waits up to one interval, and tests stop many receivers.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def start(self):
        self._thread.start()

    def stop(self):
        self._server.shutdown()
        self._server.server_close()

    def script(self, *answers: Answer):
        self.answers.extend(answers)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        raise AssertionError(f"expected {count} webhook requests, got {len(self.received)}")

    def _verify(self, body: bytes, headers: dict) -> list[str]:
        ok = []
        for secret in self.secrets:
            try:
                Webhook(secret).verify(body, headers)
                ok.append(secret)
            except WebhookVerificationError:
                pass
        return ok

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                length = int(self.headers.get("content-length", 0))
                body = self.rfile.read(length)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._lock:
                    answer = receiver.answers.popleft() if receiver.answers else receiver.default
                    receiver.received.append(Received(self.path, headers, body, time.time(),
                                                      receiver._verify(body, headers)))
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.trickle:
                    self._trickle(answer)
                    return
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    self.send_header("content-length", str(len(answer.body)))
                    self.end_headers()
                    self.wfile.write(answer.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _trickle(self, answer: Answer):
                head = "".join([f"HTTP/1.1 {answer.status} Answer\r\n",
                                *(f"{name}: {value}\r\n" for name, value in answer.headers.items()),
                                f"content-length: {len(answer.body)}\r\n\r\n"]).encode()
                rest = head + answer.body
                if answer.trickle_body_only:
                    self.wfile.write(head)
                    rest = answer.body
                for byte in rest:  # until the client gives up and closes
                    time.sleep(answer.trickle)
                    try:
                        self.wfile.write(bytes([byte]))
                    except OSError:
                        return
                self.close_connection = True

        return Handler
