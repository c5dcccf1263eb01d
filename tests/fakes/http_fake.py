"""What the provider fakes (Pagar.me, Kobana) share: a ThreadingHTTPServer on 127.0.0.1:0, JSON
requests and answers, scripted faults, an idempotency cache, and a log of what was asked."""

import hashlib
import json
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from cobrador.core import clock

# Faults a test can script with fail_next(). "after_charge" faults create the charge, then lose the answer.
CHARGE_FAULTS = {"timeout_after_charge", "500_after_charge", "timeout", "500", "validation"}


class _Server(ThreadingHTTPServer):
    # The default listen backlog of 5 overflows when a batch's concurrent calls connect at once: a dropped
    # SYN is retried a second later, past the 1 s timeout the NFe.io tests set, and the call is "ambiguous".
    request_queue_size = 128


@dataclass
class Request:
    method: str
    path: str  # without the query string, lower-cased
    query: dict[str, str]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self):
        return json.loads(self.body) if self.body else None


@dataclass
class Answer:
    status: int
    body: object = None  # JSON-serializable, or None for no body
    headers: dict = field(default_factory=dict)
    hang: bool = False  # hold the request past the client's timeout, then drop it

    def encoded(self) -> bytes:
        return b"" if self.body is None else json.dumps(self.body).encode()


@dataclass
class CachedAnswer:
    fingerprint: str
    answer: Answer
    at: datetime


class HttpFake:
    """Subclasses implement `route(request) -> Answer`."""

    IDEMPOTENCY_WINDOW = timedelta(hours=24)

    def __init__(self, *, now=clock.now, fault_delay: float = 1.5):
        self.now = now
        self.fault_delay = fault_delay  # how long a "timeout" holds the request (set the client's below it)
        self.lock = threading.RLock()
        self.requests: list[Request] = []
        self.faults: deque[str] = deque()
        self.idempotency_cache: dict[str, CachedAnswer] = {}
        self._stopping = threading.Event()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    # --- lifecycle ---

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self):
        self._thread.start()
        return self

    def stop(self):
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # --- scripting ---

    def fail_next(self, kind: str, count: int = 1):
        """The next `count` charge-creating requests fail as `kind`."""
        if kind not in self.FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {sorted(self.FAULTS)}")
        with self.lock:
            self.faults.extend([kind] * count)

    def take_fault(self) -> str:
        with self.lock:
            return self.faults.popleft() if self.faults else ""

    FAULTS = CHARGE_FAULTS

    # --- idempotency ---

    def cached(self, key: str, request: Request) -> Answer | None | bool:
        """The stored answer for `key`; False when the key was used with other parameters."""
        with self.lock:
            now = self.now()
            for stale in [k for k, c in self.idempotency_cache.items() if now - c.at > self.IDEMPOTENCY_WINDOW]:
                del self.idempotency_cache[stale]
            cached = self.idempotency_cache.get(key)
            if cached is None:
                return None
            if cached.fingerprint != fingerprint(request):
                return False
            return cached.answer

    def remember(self, key: str, request: Request, answer: Answer):
        if key:
            with self.lock:
                self.idempotency_cache[key] = CachedAnswer(fingerprint(request), answer, self.now())

    # --- HTTP ---

    def route(self, request: Request) -> Answer:  # pragma: no cover - subclasses
        raise NotImplementedError

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two sends; without this each answer waits ~40 ms.
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path.lower().rstrip("/") or "/",
                                  {k: v[-1] for k, v in parse_qs(parts.query).items()},
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                with fake.lock:
                    fake.requests.append(request)
                try:
                    answer = fake.route(request)
                except Exception as exc:  # noqa: BLE001 - a bug in the fake must show up, not hang the client
                    answer = Answer(500, {"message": f"fake crashed: {exc!r}"})
                if answer.hang:
                    fake._stopping.wait(fake.fault_delay)
                    self.close_connection = True
                    return
                payload = answer.encoded()
                try:
                    self.send_response(answer.status)
                    for name, value in answer.headers.items():
                        self.send_header(name, value)
                    if payload:
                        self.send_header("content-type", "application/json; charset=utf-8")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = _serve

        return Handler


def fingerprint(request: Request) -> str:
    try:
        canonical = json.dumps(request.json(), sort_keys=True).encode()
    except ValueError:
        canonical = request.body
    return hashlib.sha256(request.method.encode() + request.path.encode() + canonical).hexdigest()


def crc16(data: bytes) -> int:
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def pix_emv(txid: str, amount_reais: str) -> str:
    def tlv(tag, value):
        return f"{tag}{len(value):02d}{value}"

    payload = (tlv("00", "01") + tlv("26", tlv("00", "br.gov.bcb.pix") + tlv("01", "fake@provider.test"))
               + tlv("52", "0000") + tlv("53", "986") + tlv("54", amount_reais) + tlv("58", "BR")
               + tlv("59", "FAKE PROVIDER") + tlv("60", "SAO PAULO")
               + tlv("62", tlv("05", "".join(c for c in txid if c.isalnum())[:25])) + "6304")
    return payload + f"{crc16(payload.encode()):04X}"
