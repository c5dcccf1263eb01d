"""The demo organization's webhook endpoint: a small HTTP server on loopback that verifies every
request's Standard Webhooks signature (with the `standardwebhooks` package, as a customer would) and
counts the events it accepted by type. A request whose signature does not verify is answered 401 and
counted apart, so a signing bug shows in the summary instead of passing unnoticed."""

import json
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


class WebhookReceiver:
    def __init__(self):
        self.secret = ""
        self.by_type: Counter = Counter()
        self.by_account: Counter = Counter()  # ba_ id -> events about that billing account
        self.bad_signatures = 0
        self.requests = 0
        self.duplicates = 0  # the same webhook-id again (a retry of a delivery that had succeeded)
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="simulation-webhook-receiver", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"

    def start(self) -> "WebhookReceiver":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _receive(self, body: bytes, headers: dict[str, str]) -> int:
        with self._lock:
            self.requests += 1
            secret = self.secret
        try:
            payload = Webhook(secret).verify(body, headers)
        except (WebhookVerificationError, ValueError):
            with self._lock:
                self.bad_signatures += 1
            return 401
        if isinstance(payload, (bytes, str)):
            payload = json.loads(payload)
        with self._lock:
            webhook_id = headers.get("webhook-id", "")
            if webhook_id in self._seen:
                self.duplicates += 1
            else:
                self._seen.add(webhook_id)
                event_type = payload.get("type", "?")
                self.by_type[event_type] += 1
                data = payload.get("data") or {}
                account = data.get("id") if event_type.startswith("billing_account.") else (
                    data.get("account") or data.get("account_id"))
                if account:
                    self.by_account[account] += 1
        return 200

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                status = receiver._receive(body, {k.lower(): v for k, v in self.headers.items()})
                answer = b'{"ok":true}' if status == 200 else b'{"error":"bad signature"}'
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler
