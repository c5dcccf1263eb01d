"""A small authoritative DNS server on loopback (UDP, an ephemeral port), built with dnspython's message
classes: the tests' zone, which both cobrador's checks (COBRADOR_DNS_NAMESERVERS) and pebble's HTTP-01
validation (`pebble -dnsserver`) ask.

    server = DnsServer(); server.start()
    server.set("pagar.padaria.test", "CNAME", "domains.cobrador.test")
    server.set("domains.cobrador.test", "A", "127.0.0.1")
    server.remove("pagar.padaria.test")

A name with a CNAME answers other types with the CNAME and the target's records (as a recursive
resolver would); a name with no records is NXDOMAIN; names in `servfail` answer SERVFAIL.
"""

import socket
import threading
from collections import Counter

import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset


class DnsServer:
    def __init__(self, host: str = "127.0.0.1"):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind((host, 0))
        self.host, self.port = self.sock.getsockname()
        self.records: dict[tuple[str, str], list[str]] = {}
        self.names: Counter = Counter()  # record sets per name: a name with none is NXDOMAIN
        self.servfail: set[str] = set()
        self.queries: Counter = Counter()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._stopped = False

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def set(self, name: str, rdtype: str, *values: str) -> None:  # noqa: A003 - the zone's verb
        key = (name.lower().rstrip("."), rdtype.upper())
        with self._lock:
            if key not in self.records:
                self.names[key[0]] += 1
            self.records[key] = list(values)

    def remove(self, name: str, rdtype: str | None = None) -> None:
        name = name.lower().rstrip(".")
        with self._lock:
            for key in [k for k in self.records if k[0] == name and (rdtype is None or k[1] == rdtype.upper())]:
                del self.records[key]
                self.names[name] -= 1
                if not self.names[name]:
                    del self.names[name]

    def start(self) -> "DnsServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopped = True
        self.sock.close()

    def _serve(self) -> None:
        while not self._stopped:
            try:
                wire, client = self.sock.recvfrom(4096)
            except OSError:
                return
            try:
                answer = self._answer(dns.message.from_wire(wire))
            except Exception:  # noqa: BLE001 - a malformed query gets no answer, as from a real server
                continue
            try:
                self.sock.sendto(answer.to_wire(), client)
            except OSError:
                return

    def _rrset(self, name: str, rdtype: str, values: list[str]):
        return dns.rrset.from_text_list(dns.name.from_text(name), 60, dns.rdataclass.IN, rdtype, values)

    def _answer(self, query):
        response = dns.message.make_response(query)
        response.flags |= dns.flags.AA | dns.flags.RA
        question = query.question[0]
        name = question.name.to_text(omit_final_dot=True).lower()
        rdtype = dns.rdatatype.to_text(question.rdtype)
        self.queries[(name, rdtype)] += 1
        if name in self.servfail:
            response.set_rcode(dns.rcode.SERVFAIL)
            return response
        with self._lock:
            seen = 0
            while seen < 8:
                seen += 1
                values = self.records.get((name, rdtype))
                if values:
                    response.answer.append(self._rrset(name, rdtype, values))
                    return response
                cname = self.records.get((name, "CNAME"))
                if cname and rdtype != "CNAME":
                    response.answer.append(self._rrset(name, "CNAME", cname))
                    name = cname[0].lower().rstrip(".")
                    continue
                break
            if not response.answer and name not in self.names:
                response.set_rcode(dns.rcode.NXDOMAIN)
        return response
