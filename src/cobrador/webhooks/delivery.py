"""Delivering webhook rows: claim due rows in a batch, POST them concurrently, record the outcomes.

Per Standard Webhooks: `webhook-id` is the event id (the same on every retry), `webhook-timestamp`
is the send time, `webhook-signature` holds one `v1,` signature per active secret. 2xx is success.
A 3xx is a failure and is never followed; 410 disables the endpoint; 429 and 503 honour
`Retry-After`; other failures retry after 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h
(with jitter), then the delivery fails. An endpoint failing for 5 days in a row is disabled.
"""

import json
import logging
import random
import secrets
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import httpx
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F
from standardwebhooks.webhooks import Webhook

from cobrador.core import clock, stopping
from cobrador.jobs.retention import delete_in_batches
from cobrador.webhooks import deadline, services
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from cobrador.webhooks.ssrf import BlockedTarget, resolve_target

logger = logging.getLogger(__name__)

RETRY_DELAYS = [timedelta(seconds=5), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                timedelta(hours=5), timedelta(hours=10), timedelta(hours=14), timedelta(hours=20),
                timedelta(hours=24)]
JITTER = 0.1  # +-10% of each delay, so a failing receiver's retries do not arrive in lockstep
DISABLE_AFTER_FAILING = timedelta(days=5)
MAX_RETRY_AFTER = timedelta(hours=24)
BATCH_SIZE = 200
# Batches one deliver_batch call may pipeline before the worker's other drainers get a turn.
PIPELINE_BATCHES = 10


def payload_bytes(event) -> bytes:
    body = {"type": event.type, "timestamp": event.created_at, "data": event.data, "id": event.public_id}
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def signed_headers(msg_id: str, body: bytes, secrets_: list[str]) -> dict[str, str]:
    sent_at = clock.wall_now()  # checked against the receiver's real clock, not the simulated one
    signatures = " ".join(Webhook(s).sign(msg_id, sent_at, body.decode()) for s in secrets_)
    return {
        "content-type": "application/json",
        "user-agent": "cobrador-webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signatures,
    }


@dataclass
class Outcome:
    status_code: int | None = None
    body: str = ""
    error: str = ""
    duration_ms: int = 0
    retry_after: timedelta | None = None

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def _retry_after(value: str | None) -> timedelta | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = (parsedate_to_datetime(value) - clock.wall_now()).total_seconds()
        except (TypeError, ValueError):
            return None
    return min(max(timedelta(seconds=seconds), timedelta(seconds=1)), MAX_RETRY_AFTER)


_client_lock = threading.Lock()
_client: httpx.Client | None = None


def http_client() -> httpx.Client:
    """One pooled client per process. Never follows redirects; explicit timeouts, and a deadline for the
    whole request (deadline.py)."""
    global _client
    with _client_lock:
        if _client is None:
            limits = httpx.Limits(max_connections=settings.WEBHOOK_CONCURRENCY * 2,
                                  max_keepalive_connections=settings.WEBHOOK_CONCURRENCY * 2)
            timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS, connect=5.0)
            _client = deadline.client(limits=limits, timeout=timeout, follow_redirects=False)
        return _client


RESPONSE_BODY_KEPT = 1024


def _read_start(response: httpx.Response) -> str:
    """The first 1 KB of the body: a receiver's huge or endless body is never read whole."""
    start = b""
    for chunk in response.iter_bytes():
        start += chunk
        if len(start) >= RESPONSE_BODY_KEPT:
            break
    return start[:RESPONSE_BODY_KEPT].decode(response.encoding or "utf-8", errors="replace")[:RESPONSE_BODY_KEPT]


def post_signed(url: str, body: bytes, headers: dict[str, str]) -> Outcome:
    started = time.monotonic()
    try:
        target = resolve_target(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except BlockedTarget as exc:
        return Outcome(error=f"blocked: {exc}")
    extensions = {"sni_hostname": target.sni_hostname} if target.sni_hostname else {}
    # Per request, so a changed setting applies even though the client is built once per process.
    timeout = httpx.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS, connect=min(5.0, settings.WEBHOOK_TIMEOUT_SECONDS))
    try:
        with deadline.within(settings.WEBHOOK_TIMEOUT_SECONDS), http_client().stream(
                "POST", target.url, content=body, headers={**headers, "host": target.host_header},
                extensions=extensions, timeout=timeout) as response:
            response_start = _read_start(response)
    except httpx.TimeoutException:
        return Outcome(error="timeout", duration_ms=int((time.monotonic() - started) * 1000))
    except httpx.HTTPError as exc:
        return Outcome(error=f"connection error: {type(exc).__name__}: {exc}"[:500],
                       duration_ms=int((time.monotonic() - started) * 1000))
    outcome = Outcome(status_code=response.status_code, body=response_start,
                      duration_ms=int((time.monotonic() - started) * 1000))
    if 300 <= response.status_code < 400:
        outcome.error = "redirects are not followed"
    if response.status_code in (429, 503):
        outcome.retry_after = _retry_after(response.headers.get("retry-after"))
    return outcome


def claim_due(*, now: datetime, limit: int = BATCH_SIZE) -> tuple[str, list[WebhookDelivery]]:
    """Take up to `limit` due rows for this worker by pushing them one lease into the future."""
    token = secrets.token_hex(8)
    lease_until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    due = WebhookDelivery.objects.filter(status="pending", next_attempt_at__lte=now).order_by("next_attempt_at")
    lease = {"next_attempt_at": lease_until, "claim_token": token, "attempt_count": F("attempt_count") + 1,
             "schedule_position": F("schedule_position") + 1}
    if connection.vendor == "postgresql":
        with transaction.atomic():
            ids = list(due.select_for_update(skip_locked=True).values_list("pk", flat=True)[:limit])
            if not ids:
                return token, []
            WebhookDelivery.objects.filter(pk__in=ids, status="pending", next_attempt_at__lte=now).update(**lease)
    else:
        # SQLite has one write lock for the whole database. Take it only when something is due (an idle
        # poll is a read), and for one statement; BEGIN IMMEDIATE waits for it (core.sqlite3).
        if not due.exists():
            return token, []
        with transaction.atomic():
            WebhookDelivery.objects.filter(pk__in=due.values("pk")[:limit]).update(**lease)
    # The claimed rows are the pending ones leased until exactly `lease_until` (an indexed lookup) with our token.
    rows = list(WebhookDelivery.objects.filter(status="pending", next_attempt_at=lease_until, claim_token=token)
                .select_related("event"))
    # One endpoint object (one secret decryption) per endpoint, not per row. A row whose endpoint was
    # deleted just now is gone with it.
    endpoints = WebhookEndpoint.objects.in_bulk({row.endpoint_id for row in rows})
    for row in rows:
        if row.endpoint_id in endpoints:
            row.endpoint = endpoints[row.endpoint_id]
    return token, [row for row in rows if row.endpoint_id in endpoints]


def _send(delivery: WebhookDelivery) -> Outcome:
    endpoint = delivery.endpoint
    if endpoint.status != "enabled":
        return Outcome(error="endpoint disabled")
    body = payload_bytes(delivery.event)
    headers = signed_headers(delivery.event.public_id, body, services.signing_secrets(endpoint))
    return post_signed(endpoint.url, body, headers)


def _next_attempt(delivery: WebhookDelivery, outcome: Outcome, now: datetime) -> datetime | None:
    position = delivery.schedule_position  # attempts made since the last replay, this one included
    if position > len(RETRY_DELAYS):
        return None  # Retry-After moves an attempt, but never adds attempts past the schedule
    if outcome.retry_after is not None:
        return now + outcome.retry_after
    delay = RETRY_DELAYS[position - 1]
    return now + delay * (1 + random.uniform(-JITTER, JITTER))


def record_outcomes(token: str, results: list[tuple[WebhookDelivery, Outcome, datetime]]) -> None:
    """Write every attempt and the next state of each delivery and endpoint in one transaction."""
    now = clock.now()
    attempts, to_disable = [], {}
    recovered, failing = set(), set()
    succeeded_by_status: dict[int, list[int]] = {}  # written with one UPDATE per status code
    with transaction.atomic():
        # Lock the rows (in pk order) so a concurrent delete of an endpoint waits for this batch; a row
        # already deleted gets no attempt row, which would break the foreign key and lose the batch.
        existing = set(WebhookDelivery.objects.select_for_update().filter(pk__in=[r[0].pk for r in results])
                       .order_by("pk").values_list("pk", flat=True))
        for delivery, outcome, attempted_at in results:
            if delivery.pk not in existing:
                continue
            attempts.append(WebhookAttempt(
                delivery_id=delivery.pk, number=delivery.attempt_count, attempted_at=attempted_at,
                status_code=outcome.status_code, duration_ms=outcome.duration_ms, response_body=outcome.body,
                error=outcome.error[:500], succeeded=outcome.succeeded))
            if outcome.succeeded:
                succeeded_by_status.setdefault(outcome.status_code, []).append(delivery.pk)
                recovered.add(delivery.endpoint_id)
                continue
            update = {"last_status_code": outcome.status_code, "last_error": outcome.error[:500], "claim_token": ""}
            failing.add(delivery.endpoint_id)
            next_at = None if outcome.error == "endpoint disabled" else _next_attempt(delivery, outcome, now)
            if outcome.status_code == 410:
                next_at = None
                to_disable[delivery.endpoint_id] = (delivery.endpoint, "the endpoint answered 410 Gone")
            if next_at is None:
                update.update(status="failed", next_attempt_at=None, finished_at=now)
            else:
                update.update(next_attempt_at=next_at)
            # Only the claimant writes: a row whose lease expired and was taken over is left to its new owner.
            WebhookDelivery.objects.filter(pk=delivery.pk, claim_token=token).update(**update)
        for status_code, pks in succeeded_by_status.items():
            WebhookDelivery.objects.filter(pk__in=pks, claim_token=token).update(
                status="succeeded", next_attempt_at=None, finished_at=now, last_status_code=status_code,
                last_error="", claim_token="")
        WebhookAttempt.objects.bulk_create(attempts)
        WebhookEndpoint.objects.filter(pk__in=recovered - failing, failing_since__isnull=False).update(
            failing_since=None)
        # A success breaks the streak even when other deliveries of the batch failed: a new one starts now.
        WebhookEndpoint.objects.filter(pk__in=recovered & failing).update(failing_since=now)
        WebhookEndpoint.objects.filter(pk__in=failing - recovered, failing_since__isnull=True).update(
            failing_since=now)
        for endpoint in WebhookEndpoint.objects.filter(pk__in=failing - recovered, status="enabled",
                                                       failing_since__lte=now - DISABLE_AFTER_FAILING):
            to_disable.setdefault(endpoint.pk, (endpoint, "failing for 5 days in a row"))
        for endpoint, reason in to_disable.values():
            services.disable_endpoint(endpoint=endpoint, reason=reason)


_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _sender_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(settings.WEBHOOK_CONCURRENCY, thread_name_prefix="webhook-send")
        return _pool


def _attempt(delivery: WebhookDelivery) -> tuple[WebhookDelivery, Outcome, datetime]:
    attempted_at = clock.now()
    return delivery, _send(delivery), attempted_at


def _record(batch: tuple[str, list[Future]]) -> None:
    token, sends = batch
    record_outcomes(token, [send.result() for send in sends])


def _pipeline_batches() -> int:
    # Not on SQLite: there the outcomes of one batch would be written while the senders post the next,
    # and the database's one write lock would be held while this thread waits for the GIL.
    return PIPELINE_BATCHES if connection.vendor == "postgresql" else 1


def deliver_batch(*, limit: int | None = None, max_batches: int | None = None) -> int:
    """Claim and deliver due rows, up to `max_batches` batches of `limit`; returns how many were attempted.

    The batches overlap: while the senders post one batch, this thread claims the next and records
    the one before, so the senders do not wait for the database. It stops after a batch that is not
    full, and every outcome is recorded before it returns.
    """
    limit, max_batches = limit or BATCH_SIZE, max_batches or _pipeline_batches()
    attempted, in_flight = 0, None
    try:
        for _ in range(max_batches):
            token, deliveries = claim_due(now=clock.now(), limit=limit)
            previous = in_flight
            in_flight = (token, [_sender_pool().submit(_attempt, d) for d in deliveries]) if deliveries else None
            if previous is not None:
                _record(previous)
            attempted += len(deliveries)
            if len(deliveries) < limit:
                break
    finally:
        if in_flight is not None:
            _record(in_flight)
    return attempted


def deliver_due(*, max_batches: int | None = None) -> int:
    """Deliver until nothing is due (or `max_batches`); returns the number of attempts made."""
    if max_batches is not None:
        return deliver_batch(max_batches=max_batches)
    total = 0
    # A worker's stop request ends the loop between batches (the rest stays due).
    while not stopping.requested() and (attempted := deliver_batch()):
        total += attempted
    return total


def webhook_delivery_sweep(run) -> None:
    """The `webhook-delivery` job: the safety net behind the drainer that runs in every worker."""
    attempted = deliver_due()
    run.done += attempted
    run.count("attempts", attempted)


def prune_finished_deliveries(as_of: datetime) -> int:
    """retention-cleanup: finished deliveries (and their attempts) older than COBRADOR_RETENTION_WEBHOOK_DAYS."""
    return delete_in_batches(WebhookDelivery.objects.filter(
        finished_at__lt=as_of - timedelta(days=settings.RETENTION_DAYS["webhook_deliveries"])))
