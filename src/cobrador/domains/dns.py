"""The DNS checks of a custom domain, with dnspython, outside any transaction.

A domain is right when:
* ownership: `_cobrador.<host>` has a TXT record whose value is the domain's verification token;
* routing: `<host>` is a CNAME to COBRADOR_CUSTOM_DOMAIN_TARGET or, for an apex name (which cannot have a
  CNAME), its A/AAAA records are all among COBRADOR_CUSTOM_DOMAIN_ADDRESSES;
* CAA: the closest CAA record set above `<host>` (RFC 8659's climb) is empty or allows one of the CA's
  identities (COBRADOR_ACME_CAA_IDENTITIES, `letsencrypt.org` by default).

Each problem gets a reason code and a message saying which record is expected and what the name resolves
to now. Many domains are checked at once on one event loop (`check_many`), at a bounded concurrency.
"""

import asyncio
from dataclasses import dataclass, field

import dns.asyncresolver
import dns.exception
import dns.name
import dns.nameserver
import dns.rdatatype
import dns.resolver
from django.conf import settings

CONCURRENCY = 64


@dataclass
class Finding:
    hostname: str
    ok: bool = True
    reason: str = ""  # the first problem's code
    problems: list[tuple[str, str]] = field(default_factory=list)  # (code, message)
    observed: dict = field(default_factory=dict)
    transient: bool = False  # no answer at all (timeout, SERVFAIL): nothing is known about the records
    queries: int = 0

    @property
    def message(self) -> str:
        return " ".join(message for _, message in self.problems)

    def problem(self, code: str, message: str) -> None:
        self.ok = False
        self.reason = self.reason or code
        self.problems.append((code, message))


class _Unreachable(Exception):
    pass


def txt_name(hostname: str) -> str:
    return f"_cobrador.{hostname}"


def expected_records(hostname: str, token: str) -> list[dict]:
    """The records the organization creates (the API's answer to adding a domain)."""
    records = [{"type": "TXT", "name": txt_name(hostname), "value": token, "purpose": "ownership"},
               {"type": "CNAME", "name": hostname, "value": settings.CUSTOM_DOMAIN_TARGET, "purpose": "routing"}]
    for address in settings.CUSTOM_DOMAIN_ADDRESSES:
        records.append({"type": "AAAA" if ":" in address else "A", "name": hostname, "value": address,
                        "purpose": "routing (an apex name, instead of the CNAME)"})
    return records


def make_resolver() -> dns.asyncresolver.Resolver:
    servers = settings.DNS_NAMESERVERS
    resolver = dns.asyncresolver.Resolver(configure=not servers)
    if servers:
        nameservers = []
        for server in servers:
            host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
            nameservers.append(dns.nameserver.Do53Nameserver(host or server, int(port or 53)))
        resolver.nameservers = nameservers
    resolver.lifetime = settings.DNS_TIMEOUT
    resolver.timeout = min(settings.DNS_TIMEOUT, 2.0)
    resolver.cache = None
    return resolver


async def _values(resolver, finding: Finding, name: str, rdtype: str) -> list[str]:
    """The values of (name, rdtype), [] for none or NXDOMAIN; _Unreachable when no server answers."""
    finding.queries += 1
    try:
        answer = await resolver.resolve(dns.name.from_text(name), rdtype, raise_on_no_answer=False,
                                        search=False)
    except dns.resolver.NXDOMAIN:
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout, dns.resolver.LifetimeTimeout) as exc:
        raise _Unreachable(f"no DNS server answered for {name} {rdtype} ({exc.__class__.__name__})") from None
    if answer.rrset is None:
        return []
    return [rdata.to_text() for rdata in answer.rrset]


def _unquote_txt(value: str) -> str:
    # TXT presentation form: one or more quoted strings, concatenated.
    parts, current, quoted, escaped = [], "", False, False
    for char in value:
        if escaped:
            current += char
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == '"':
            if quoted:
                parts.append(current)
                current = ""
            quoted = not quoted
        elif quoted:
            current += char
    return "".join(parts) if parts else value


def _names_up(hostname: str) -> list[str]:
    labels = hostname.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]  # never the bare TLD


def _caa_allows(records: list[str], identities: list[str]) -> bool:
    issuers = []
    for record in records:
        parts = record.split(None, 2)
        if len(parts) == 3 and parts[1].lower() == "issue":
            issuers.append(parts[2].strip('"').split(";")[0].strip().lower())
    if not issuers:
        return True  # only iodef / issuewild records: no restriction on (non-wildcard) issuance
    return any(issuer in identities for issuer in issuers)


async def check(resolver, hostname: str, token: str) -> Finding:
    finding = Finding(hostname)
    try:
        await _check(resolver, finding, hostname, token)
    except _Unreachable as exc:
        finding.ok = False
        finding.transient = True
        finding.reason = "dns_unreachable"
        finding.problems = [("dns_unreachable", f"{exc}; cobrador tries again.")]
    return finding


async def _check(resolver, finding: Finding, hostname: str, token: str) -> None:
    target = settings.CUSTOM_DOMAIN_TARGET.lower()
    addresses = set(settings.CUSTOM_DOMAIN_ADDRESSES)
    txt_values = [_unquote_txt(v) for v in await _values(resolver, finding, txt_name(hostname), "TXT")]
    finding.observed["txt"] = txt_values
    if token not in txt_values:
        now = ("it has no TXT record now" if not txt_values else
               "it has " + ", ".join(f'"{v}"' for v in txt_values) + " now, not this domain's token")
        finding.problem("txt_missing" if not txt_values else "txt_mismatch",
                        f'Ownership: create a TXT record at {txt_name(hostname)} with the value "{token}"; {now}.')

    cnames = [v.rstrip(".").lower() for v in await _values(resolver, finding, hostname, "CNAME")]
    finding.observed["cname"] = cnames
    if cnames and cnames[0] == target:
        pass
    else:
        found = []
        if not cnames:
            for rdtype in ("A", "AAAA"):
                values = await _values(resolver, finding, hostname, rdtype)
                finding.observed[rdtype.lower()] = values
                found += values
        if not cnames and found and addresses and set(found) <= addresses:
            pass  # an apex name pointing at the configured addresses
        else:
            apex = (" (an apex name, which cannot have a CNAME: A/AAAA records to "
                    + ", ".join(sorted(addresses)) + ")") if addresses else ""
            if cnames:
                now = f"it is a CNAME to {cnames[0]} now"
                code = "cname_mismatch"
            elif found:
                now = "it resolves to " + ", ".join(found) + " now"
                code = "address_mismatch" if addresses else "cname_missing"
            else:
                now = "it resolves to nothing now"
                code = "cname_missing"
            finding.problem(code, f"Routing: point {hostname} at {target} with a CNAME record{apex}; {now}.")

    identities = [i.lower() for i in settings.ACME_CAA_IDENTITIES]
    for name in _names_up(hostname):
        caa = await _values(resolver, finding, name, "CAA")
        if caa:
            finding.observed["caa"] = {"name": name, "records": caa}
            if not _caa_allows(caa, identities):
                finding.problem(
                    "caa_forbids",
                    f"CAA: the CAA records of {name} ({'; '.join(caa)}) do not allow {identities[0]} to issue "
                    f'certificates: add the CAA record {name} CAA 0 issue "{identities[0]}" (or remove them).')
            break


async def _check_all(items: list[tuple[str, str]], concurrency: int) -> list[Finding]:
    resolver = make_resolver()
    gate = asyncio.Semaphore(concurrency)

    async def one(hostname, token):
        async with gate:
            return await check(resolver, hostname, token)

    return await asyncio.gather(*(one(h, t) for h, t in items))


def check_many(items: list[tuple[str, str]], *, concurrency: int = CONCURRENCY) -> list[Finding]:
    """Findings for [(hostname, token)], in the same order; runs the queries concurrently."""
    if not items:
        return []
    return asyncio.run(_check_all(items, concurrency))
