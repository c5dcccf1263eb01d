"""The ACME side, with certbot's `acme` and `josepy` libraries, outside any transaction.

One account per installation and directory (AcmeAccount, its key encrypted at rest). An order answers
HTTP-01: the key authorization is written to AcmeChallenge (committed at once) so that any `cobrador
web` process answers /.well-known/acme-challenge/<token>, then the challenge is answered and the order
finalized. Renewal information (RFC 9773) is read when the directory offers `renewalInfo`.

Every failure becomes a services.Failure carrying the CA's message, its Retry-After (429, 503) and
whether a validation failed (the per-hostname failed-validation limit).
"""

import base64
import datetime as dt
import email.utils
import json
import threading

import josepy as jose
import requests
from acme import challenges, client, crypto_util, errors, messages
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.db import IntegrityError

from cobrador.core import clock
from cobrador.domains.models import AcmeAccount, AcmeChallenge
from cobrador.domains.services import Failure, Issued

ORDER_DEADLINE = dt.timedelta(seconds=90)
USER_AGENT = "cobrador-acme"
_accounts_lock = threading.RLock()  # one registration at a time in a process


class _Network(client.ClientNetwork):
    """Keeps the last answer, whose Retry-After the library does not pass on with its errors."""

    last_response: requests.Response | None = None

    def _send_request(self, method, url, *args, **kwargs):
        response = super()._send_request(method, url, *args, **kwargs)
        self.last_response = response
        return response


def _verify():
    return settings.ACME_CA_BUNDLE or True


def _key_pem(key) -> str:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


def new_client() -> client.ClientV2:
    """A client for this thread, with the installation's account (registered on first use)."""
    directory_url = settings.ACME_DIRECTORY
    account = AcmeAccount.objects.filter(directory_url=directory_url).first()
    if account is not None:
        key = jose.JWKEC(key=serialization.load_pem_private_key(account.key_pem.encode(), None))
        net = _Network(key, alg=jose.ES256, verify_ssl=_verify(), user_agent=USER_AGENT, timeout=30)
        directory = client.ClientV2.get_directory(directory_url, net)
        net.account = messages.RegistrationResource(uri=account.uri, body=messages.Registration())
        return client.ClientV2(directory, net)
    with _accounts_lock:
        raw_key = ec.generate_private_key(ec.SECP256R1())
        net = _Network(jose.JWKEC(key=raw_key), alg=jose.ES256, verify_ssl=_verify(), user_agent=USER_AGENT,
                       timeout=30)
        directory = client.ClientV2.get_directory(directory_url, net)
        acme_client = client.ClientV2(directory, net)
        regr = acme_client.new_account(messages.NewRegistration.from_data(
            email=settings.ACME_CONTACT_EMAIL or None, terms_of_service_agreed=True))
        try:
            AcmeAccount.objects.create(directory_url=directory_url, key_pem=_key_pem(raw_key), uri=regr.uri,
                                       created_at=clock.now())
        except IntegrityError:  # another worker registered first: use its account
            return new_client()
        net.account = regr
        return acme_client


def _retry_after(header: str) -> dt.datetime | None:
    """Retry-After as seconds or an HTTP date, from cobrador's clock (at most a day ahead)."""
    header = header.strip()
    if header.isdigit():
        return clock.now() + dt.timedelta(seconds=min(int(header), 86400))
    try:
        when = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return min(when.astimezone(dt.UTC), clock.now() + dt.timedelta(days=1)) if when.tzinfo else None


def failure_from(exc: Exception, net: _Network | None) -> Failure:
    response = net.last_response if net is not None else None
    if isinstance(exc, errors.ClientError) and exc.args and isinstance(exc.args[0], requests.Response):
        response = exc.args[0]  # a non-JSON error answer (a 503 page, say) travels as the error's argument
    retry_after = None
    if response is not None and response.status_code in (429, 503):
        retry_after = _retry_after(response.headers.get("Retry-After", ""))
    if isinstance(exc, errors.ValidationError):
        details = []
        for authzr in exc.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    details.append(f"{challb.error.typ.rsplit(':', 1)[-1]}: {challb.error.detail}")
        return Failure("the CA could not validate the domain (HTTP-01): " + ("; ".join(details) or str(exc)),
                       retry_after=retry_after, validation_failed=True)
    if isinstance(exc, messages.Error):
        return Failure(f"the CA refused: {exc.typ.rsplit(':', 1)[-1]}: {exc.detail}", retry_after=retry_after)
    if isinstance(exc, errors.ClientError) and response is not None:
        return Failure(f"the CA answered HTTP {response.status_code}", retry_after=retry_after)
    if isinstance(exc, requests.RequestException):
        return Failure(f"the CA could not be reached: {exc.__class__.__name__}", retry_after=retry_after)
    if isinstance(exc, errors.TimeoutError):
        return Failure("the CA did not finish the order in time", retry_after=retry_after)
    return Failure(f"{exc.__class__.__name__}: {exc}"[:500], retry_after=retry_after)


def _certificate_facts(fullchain_pem: str) -> tuple[str, dt.datetime, dt.datetime]:
    leaf = x509.load_pem_x509_certificate(fullchain_pem.encode())
    return format(leaf.serial_number, "x"), leaf.not_valid_before_utc, leaf.not_valid_after_utc


def order_certificate(acme_client: client.ClientV2, hostname: str) -> Issued:
    """One ACME order for `hostname` answered by HTTP-01; raises what the library raises."""
    key = ec.generate_private_key(ec.SECP256R1())
    key_pem = _key_pem(key)
    csr = crypto_util.make_csr(key_pem.encode(), [hostname])
    order = acme_client.new_order(csr)
    tokens = []
    try:
        for authzr in order.authorizations:
            if authzr.body.status == messages.STATUS_VALID:
                continue
            challb = next((c for c in authzr.body.challenges if isinstance(c.chall, challenges.HTTP01)), None)
            if challb is None:
                raise errors.Error("the CA offered no HTTP-01 challenge")
            response, validation = challb.response_and_validation(acme_client.net.key)
            token = challb.chall.encode("token")
            AcmeChallenge.objects.update_or_create(token=token, defaults={
                "key_authorization": validation, "hostname": hostname, "created_at": clock.now()})
            tokens.append(token)
            acme_client.answer_challenge(challb, response)
        deadline = dt.datetime.now() + ORDER_DEADLINE
        order = acme_client.poll_and_finalize(order, deadline)
    finally:
        AcmeChallenge.objects.filter(token__in=tokens).delete()
    serial, not_before, not_after = _certificate_facts(order.fullchain_pem)
    return Issued(fullchain_pem=order.fullchain_pem, key_pem=key_pem, serial=serial, not_before=not_before,
                  not_after=not_after)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ari_certificate_id(fullchain_pem: str) -> str:
    """RFC 9773 section 4.1: base64url(authority key identifier) "." base64url(serial's DER octets)."""
    leaf = x509.load_pem_x509_certificate(fullchain_pem.encode())
    aki = leaf.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    serial = leaf.serial_number
    octets = serial.to_bytes((serial.bit_length() + 8) // 8, "big")  # DER: a leading 0 keeps it positive
    return f"{_b64(aki)}.{_b64(octets)}"


def renewal_window(acme_client: client.ClientV2, fullchain_pem: str):
    """(window start, window end, when to ask again) from the CA's renewal information, or None when its
    directory offers none."""
    try:
        base = acme_client.directory["renewalInfo"]
    except KeyError:
        return None
    response = acme_client.net.get(f"{base.rstrip('/')}/{ari_certificate_id(fullchain_pem)}",
                                   content_type="application/json")
    body = json.loads(response.content)
    window = body["suggestedWindow"]
    start = dt.datetime.fromisoformat(window["start"].replace("Z", "+00:00"))
    end = dt.datetime.fromisoformat(window["end"].replace("Z", "+00:00"))
    seconds = 6 * 3600
    header = response.headers.get("Retry-After", "")
    if header.isdigit():
        seconds = min(max(int(header), 60), 24 * 3600)
    return start, end, clock.now() + dt.timedelta(seconds=seconds)
