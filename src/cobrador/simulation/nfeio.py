"""The demo organization's NFe.io: a small server on loopback speaking the part of NFe.io's NFS-e API
cobrador uses (providers.md §3), so a simulation issues real requests through the real client. A note
is accepted (202, `WaitingCalculateTaxes`) and is `Issued` (number, verification code) from the first
read after it; a cancellation (202, `WaitingSendCancel`) is `Cancelled` from the next read. A repeated
externalId is refused with 400 "... already exists", as NFe.io does; the summary counts the notes."""

import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

API_KEY = "simulation-nfeio-key"
COMPANY_ID = "simulation-company"
_NOTE = re.compile(r"^/v1/companies/([^/]+)/serviceinvoices(?:/external/([^/]+)|/([^/]+))?$")


class NfeioSandbox:
    def __init__(self):
        self.notes: dict[str, dict] = {}
        self.by_external: dict[str, str] = {}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="simulation-nfeio", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "NfeioSandbox":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def counts(self) -> dict[str, int]:
        with self._lock:
            counts: dict[str, int] = {}
            for note in self.notes.values():
                counts[note["flowStatus"]] = counts.get(note["flowStatus"], 0) + 1
            return counts

    def _read(self, note: dict) -> dict:
        if note["flowStatus"] == "WaitingCalculateTaxes":
            number = len([n for n in self.notes.values() if n.get("number")]) + 1
            note.update(flowStatus="Issued", status="Issued", number=number, checkCode=f"SIM{number:06d}")
        elif note["flowStatus"] == "WaitingSendCancel":
            note.update(flowStatus="Cancelled", status="Cancelled")
        return dict(note)

    def answer(self, method: str, path: str, headers: dict, body: bytes) -> tuple[int, object]:
        if API_KEY not in (headers.get("authorization", ""), headers.get("x-nfe-apikey", "")):
            return 401, {"message": "Unauthorized"}
        match = _NOTE.match(path)
        if not match or match.group(1) != COMPANY_ID:
            return 404, {"message": "not found"}
        with self._lock:
            if match.group(2) is not None:
                nfeio_id = self.by_external.get(match.group(2))
                return (200, self._read(self.notes[nfeio_id])) if nfeio_id else (404, {"message": "not found"})
            if match.group(3) is None:
                if method != "POST":
                    return 405, {"message": "method not allowed"}
                document = json.loads(body or b"{}")
                external_id = str(document.get("externalId") or "")
                if external_id in self.by_external:
                    return 400, f"service invoice with external id ({external_id}) already exists"
                nfeio_id = uuid.uuid4().hex[:24]
                self.notes[nfeio_id] = {"id": nfeio_id, "externalId": external_id, "environment": "Development",
                                        "flowStatus": "WaitingCalculateTaxes", "flowMessage": "", "number": 0,
                                        "servicesAmount": document.get("servicesAmount")}
                self.by_external[external_id] = nfeio_id
                return 202, dict(self.notes[nfeio_id])
            note = self.notes.get(match.group(3))
            if note is None:
                return 404, {"message": "not found"}
            if method == "DELETE":
                note["flowStatus"] = "WaitingSendCancel"
                return 202, dict(note)
            return 200, self._read(note)

    def _handler(self):
        sandbox = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("content-length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = sandbox.answer(self.command, self.path.split("?")[0],
                                                 {k.lower(): v for k, v in self.headers.items()}, body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json; charset=utf-8")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

        return Handler
