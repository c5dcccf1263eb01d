"""Sending notices: claim a batch of due rows, render them, send them, record every outcome at once.

- e-mail: the whole batch goes over ONE connection of the default mailer (SMTP from COBRADOR_EMAIL_URL,
  or .eml files in the data directory). Each message has a stable Message-ID (<notice id@domain>), so a
  resend after a crash is recognisable as the same message. A 4xx reply, a timeout or a dropped
  connection is retried after EMAIL_RETRY_DELAYS; a 5xx reply fails the notice for good.
- webhook: a Standard Webhooks POST (webhook-id = the notice id) to the account's notification URL,
  through the webhook machinery's SSRF guard; retried on the webhook schedule.
- in_app: rendered and stored on the notice, listed by /v1/billing_accounts/{id}/notifications.

A template that fails to render parks its notice with the error (never blocking the rest of the batch)
and e-mails the organization once a day per template. Claims work like webhook deliveries: a claimed
row is pushed one lease into the future, so a killed worker's rows become due again.
"""

import email.policy
import json
import logging
import random
import secrets
import smtplib
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import format_datetime, parseaddr

from django.conf import settings
from django.core import mail
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import F

from cobrador.core import clock, stopping
from cobrador.core.bulk import update_rows
from cobrador.dunning.models import DunningInvoice
from cobrador.notifications import contexts, registry, services
from cobrador.notifications.defaults import TemplateParts, default_template
from cobrador.notifications.messages import NoticeEmail, address
from cobrador.notifications.models import AccountNotificationSettings, Notice, NotificationTemplate
from cobrador.notifications.rendering import RenderedMessage, RenderError, TemplateCompileError, render, render_message
from cobrador.payments.models import Payment
from cobrador.webhooks.delivery import RETRY_DELAYS as WEBHOOK_RETRY_DELAYS
from cobrador.webhooks.delivery import post_signed, signed_headers

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
EMAIL_RETRY_DELAYS = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2),
                      timedelta(hours=6), timedelta(hours=12), timedelta(hours=24)]
JITTER = 0.1
UPDATED_FIELDS = ["status", "next_attempt_at", "claim_token", "last_error", "subject", "body_text", "sent_at"]


@dataclass
class Outcome:
    sent: bool = False
    error: str = ""
    permanent: bool = False  # do not retry
    parked: bool = False  # the template failed
    subject: str = ""
    body_text: str = ""


# --- claiming -------------------------------------------------------------------------------------------

def claim_due(*, now: datetime, limit: int = BATCH_SIZE) -> tuple[str, list[Notice]]:
    token = secrets.token_hex(8)
    lease_until = now + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)
    due = Notice.objects.filter(status="pending", next_attempt_at__lte=now).order_by("next_attempt_at")
    # SQLite has one write lock for the whole database: an idle poll stays a read, as webhooks' does.
    if connection.vendor == "sqlite" and not due.exists():
        return token, []
    ids = _lease(due, token=token, now=now, lease_until=lease_until, limit=limit)
    if not ids:
        return token, []
    notices = list(Notice.objects.filter(claim_token=token, pk__in=ids).select_related("organization", "account"))
    return token, notices


def _lease(due, *, token: str, now: datetime, lease_until: datetime, limit: int) -> list[int]:
    with transaction.atomic():
        if connection.vendor == "postgresql":
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        if ids:
            Notice.objects.filter(pk__in=ids, status="pending", next_attempt_at__lte=now).update(
                next_attempt_at=lease_until, claim_token=token, attempts=F("attempts") + 1)
    return ids


# --- rendering ------------------------------------------------------------------------------------------

def _templates(notices: list[Notice]) -> dict[tuple, TemplateParts]:
    """The template of every (organization, type, locale) in the batch: the organization's own or the default."""
    keys = {(n.organization_id, n.type, n.locale) for n in notices}
    custom = NotificationTemplate.objects.filter(
        organization_id__in={k[0] for k in keys}, type__in={k[1] for k in keys if registry.TYPES[k[1]].editable})
    found = {(t.organization_id, t.type, t.locale): TemplateParts(t.subject, t.html_body, t.text_body)
             for t in custom}
    return {key: found.get(key) or default_template(key[1], key[2]) for key in keys}


def _payment_failed_extras(notices: list[Notice]) -> dict[str, dict]:
    """For payment_failed notices, what is true when they are sent (the failure event may come before
    dunning scheduled the retry or issued a document in the same transaction): the next retry date and
    the boleto / PIX waiting to be paid, per invoice public id, formatted for each notice's locale later."""
    invoice_ids = {n.context.get("invoice", {}).get("id") for n in notices if n.type == "payment_failed"}
    invoice_ids.discard(None)
    invoice_ids.discard("")
    if not invoice_ids:
        return {}

    extras: dict[str, dict] = {}
    for invoice_id, next_attempt_at in DunningInvoice.objects.filter(
            invoice__public_id__in=invoice_ids, status="scheduled", next_attempt_at__isnull=False,
    ).values_list("invoice__public_id", "next_attempt_at"):
        extras.setdefault(invoice_id, {})["next_retry_at"] = next_attempt_at
    pending = (Payment.objects.filter(invoice__public_id__in=invoice_ids, method__in=["bank_slip", "pix"],
                                      status__in=["pending", "processing"])
               .select_related("invoice").order_by("created_at"))
    for payment in pending:
        extras.setdefault(payment.invoice.public_id, {})[payment.method] = {
            "boleto_url": payment.boleto_url, "boleto_line": payment.boleto_line,
            "boleto_barcode": payment.boleto_barcode, "pix_copy_paste": payment.pix_copy_paste,
            "pix_qr_code_url": payment.pix_qr_code_url, "expires_at": payment.expires_at}
    return extras


def _context(notice: Notice, extras: dict) -> dict:
    context = dict(notice.context)
    context.setdefault("link", notice.link)
    context["unsubscribe_url"] = (services.unsubscribe_url(notice.account.public_id, notice.type)
                                  if notice.channel == "email" and notice.account_id else "")
    if notice.type == "payment_failed":
        found = extras.get(context.get("invoice", {}).get("id"), {})
        timezone = notice.organization.timezone
        if found.get("next_retry_at") and not context.get("retry_date"):
            context["retry_date"] = contexts.retry_date(found, notice.locale, timezone)
        if "bank_slip" in found and not context.get("boleto"):
            context["boleto"] = contexts.boleto_context(found["bank_slip"], notice.locale, timezone)
        if "pix" in found and not context.get("pix"):
            context["pix"] = contexts.pix_context(found["pix"], notice.locale, timezone)
    return context


def _render(notice: Notice, parts: TemplateParts, context: dict) -> RenderedMessage:
    if notice.channel == "email":
        message = render_message(subject=parts.subject, html_body=parts.html_body, text_body=parts.text_body,
                                 context=context)
    else:
        message = RenderedMessage(subject=" ".join(render(parts.subject, context, html=False).split())[:500],
                                  html="", text=render(parts.text_body, context, html=False))
    if notice.is_test:
        message = RenderedMessage(subject=f"[TEST] {message.subject}"[:500], html=message.html, text=message.text)
    return message


# --- e-mail ---------------------------------------------------------------------------------------------

def _from_address() -> str:
    return parseaddr(settings.DEFAULT_FROM_EMAIL)[1] or "cobrador@localhost"


def message_id(notice: Notice) -> str:
    domain = _from_address().rpartition("@")[2] or "cobrador.local"
    return f"<{notice.public_id}@{domain}>"


def build_email(notice: Notice, message: RenderedMessage, context: dict) -> NoticeEmail:
    headers = {"Message-ID": message_id(notice), "Date": format_datetime(clock.now()),
               "Auto-Submitted": "auto-generated", "X-Cobrador-Notification": notice.type}
    if context.get("unsubscribe_url"):
        headers["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
        headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    organization = notice.organization
    mail_message = NoticeEmail(
        subject=message.subject, body=message.text, from_email=address(organization.name, _from_address()),
        to=[notice.recipient], headers=headers,
        reply_to=[organization.billing_email] if organization.billing_email and notice.account_id else None)
    mail_message.attach_alternative(message.html, "text/html")
    mail_message.message(policy=email.policy.SMTP)  # the bytes the SMTP backend sends, made now (or ValueError)
    return mail_message


def _smtp_failure(exc: Exception) -> Outcome:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(exc.recipients.values()), (None, b""))
    elif isinstance(exc, smtplib.SMTPResponseException):
        code, reply = exc.smtp_code, exc.smtp_error
    else:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:1000])
    if isinstance(reply, bytes):
        reply = reply.decode("utf-8", "replace")
    return Outcome(error=f"SMTP {code}: {reply}"[:1000], permanent=code is not None and 500 <= code < 600)


def _close_quietly(mailer) -> None:
    try:
        mailer.close()
    except Exception:  # noqa: BLE001 - a broken connection is being thrown away
        if getattr(mailer, "connection", None) is not None:
            mailer.connection = None


def _needs_reconnect(mailer) -> bool:
    """The SMTP connection was dropped (by us after a timeout, or by the server after a 421). Backends
    without a connection (files, memory) never need one."""
    if not hasattr(mailer, "connection"):
        return False
    return mailer.connection is None or getattr(mailer.connection, "sock", True) is None


def send_emails(emails: list[tuple[Notice, NoticeEmail]]) -> dict[int, Outcome]:
    """Send over one connection. A timeout or a dropped connection fails (for a retry) only the message
    it happened to; the connection is reopened for the rest. If it cannot be, the rest retry later."""
    outcomes: dict[int, Outcome] = {}
    if not emails:
        return outcomes
    mailer = mail.mailers.default
    try:
        mailer.open()
    except Exception as exc:  # noqa: BLE001 - the server is down: everything retries later
        error = f"cannot connect to the mail server: {type(exc).__name__}: {exc}"[:1000]
        return {notice.pk: Outcome(error=error) for notice, _ in emails}
    try:
        for i, (notice, mail_message) in enumerate(emails):
            try:
                if _needs_reconnect(mailer):
                    _close_quietly(mailer)
                    mailer.open()
            except Exception as exc:  # noqa: BLE001
                error = f"cannot reconnect to the mail server: {type(exc).__name__}: {exc}"[:1000]
                outcomes.update({later.pk: Outcome(error=error) for later, _ in emails[i:]})
                break
            try:
                mailer.send_messages([mail_message])
                outcomes[notice.pk] = Outcome(sent=True)
            except (smtplib.SMTPRecipientsRefused, smtplib.SMTPSenderRefused, smtplib.SMTPDataError) as exc:
                outcomes[notice.pk] = _smtp_failure(exc)  # the server answered: the connection is still good
            except ValueError as exc:  # an address the mailer refuses to even try
                outcomes[notice.pk] = Outcome(error=f"invalid address: {exc}"[:1000], permanent=True)
            except (smtplib.SMTPException, OSError) as exc:  # a timeout or a lost connection: start afresh
                outcomes[notice.pk] = _smtp_failure(exc)
                _close_quietly(mailer)
    finally:
        _close_quietly(mailer)
    return outcomes


# --- webhook --------------------------------------------------------------------------------------------

_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _sender_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(settings.WEBHOOK_CONCURRENCY, thread_name_prefix="notice-webhook")
        return _pool


def webhook_body(notice: Notice, message: RenderedMessage) -> bytes:
    body = {"id": notice.public_id, "type": f"notification.{notice.type}", "timestamp": notice.created_at,
            "data": {"object": "notification", "id": notice.public_id, "type": notice.type,
                     "account_id": notice.account.public_id if notice.account_id else None,
                     "locale": notice.locale, "subject": message.subject, "text": message.text,
                     "link": notice.link or None, "context": notice.context}}
    return json.dumps(body, cls=DjangoJSONEncoder, separators=(",", ":")).encode()


def send_webhooks(posts: list[tuple[Notice, RenderedMessage]]) -> dict[int, Outcome]:
    secrets_by_account = dict(AccountNotificationSettings.objects.filter(
        account_id__in={n.account_id for n, _ in posts}).values_list("account_id", "webhook_secret"))

    def post(item):
        notice, message = item
        secret = secrets_by_account.get(notice.account_id)
        if not secret:
            return notice, Outcome(error="the account has no notification webhook any more", permanent=True)
        body = webhook_body(notice, message)
        result = post_signed(notice.recipient, body, signed_headers(notice.public_id, body, [secret]))
        if result.succeeded:
            return notice, Outcome(sent=True)
        error = result.error or f"HTTP {result.status_code}"
        return notice, Outcome(error=error[:1000], permanent=result.status_code == 410 or error.startswith("blocked"))

    return {notice.pk: outcome for notice, outcome in _sender_pool().map(post, posts)}


# --- the batch ------------------------------------------------------------------------------------------

def _next_attempt(notice: Notice, now: datetime) -> datetime | None:
    delays = WEBHOOK_RETRY_DELAYS if notice.channel == "webhook" else EMAIL_RETRY_DELAYS
    if notice.attempts > len(delays):
        return None
    return now + delays[notice.attempts - 1] * (1 + random.uniform(-JITTER, JITTER))


def _template_failure_drafts(parked: list[tuple[Notice, str]]) -> list:
    drafts, seen, today = [], set(), clock.now().date().isoformat()
    for notice, error in parked:
        key = (notice.organization_id, notice.type, notice.locale)
        if key in seen or notice.is_test:
            continue
        seen.add(key)
        organization = notice.organization
        drafts.append(services.NoticeDraft(
            organization=organization, type="template_failed", recipient=organization.billing_email,
            key=f"{organization.public_id}:{notice.type}:{notice.locale}:{today}",
            context={"template": {"type": notice.type, "locale": notice.locale}, "error": error}))
    return drafts


def record_outcomes(token: str, notices: list[Notice], outcomes: dict[int, Outcome]) -> None:
    """One transaction. Rows sent with nothing of their own to store (e-mail, webhook) take one UPDATE;
    in-app rows (their rendered text) and failures are written with one bulk row update. Only the
    claimant writes: a row whose lease ran out and was taken over is left to its new owner."""
    now = clock.now()
    plainly_sent, own_values, parked = [], [], []
    for notice in notices:
        outcome = outcomes[notice.pk]
        if outcome.sent and notice.channel != "in_app":
            plainly_sent.append(notice.pk)
            continue
        notice.claim_token, notice.last_error = "", outcome.error
        if outcome.sent:
            notice.status, notice.next_attempt_at, notice.sent_at = "sent", None, now
            notice.subject, notice.body_text = outcome.subject, outcome.body_text
        elif outcome.parked:
            notice.status, notice.next_attempt_at = "parked", None
            parked.append((notice, outcome.error))
        else:
            next_at = None if outcome.permanent else _next_attempt(notice, now)
            notice.status = "pending" if next_at else "failed"
            notice.next_attempt_at = next_at
        own_values.append(notice)
    with transaction.atomic():
        if plainly_sent:
            Notice.objects.filter(pk__in=plainly_sent, claim_token=token).update(
                status="sent", next_attempt_at=None, sent_at=now, claim_token="", last_error="")
        if own_values:
            owned_rows = Notice.objects.filter(pk__in=[n.pk for n in own_values], claim_token=token)
            if connection.vendor == "postgresql":
                owned_rows = owned_rows.select_for_update()
            owned = set(owned_rows.values_list("pk", flat=True))
            update_rows([n for n in own_values if n.pk in owned], UPDATED_FIELDS)
        services.enqueue_notices(_template_failure_drafts(parked))


@dataclass
class PreparedBatch:
    outcomes: dict[int, Outcome]  # notices already decided: parked, or in-app (sent)
    emails: list[tuple[Notice, NoticeEmail]]
    posts: list[tuple[Notice, RenderedMessage]]
    rendered: dict[int, RenderedMessage]


def prepare_batch(notices: list[Notice]) -> PreparedBatch:
    """Render every notice of a batch; a template failure parks that notice only."""
    batch = PreparedBatch(outcomes={}, emails=[], posts=[], rendered={})
    templates = _templates(notices)
    extras = _payment_failed_extras(notices)
    for notice in notices:
        context = _context(notice, extras)
        try:
            message = _render(notice, templates[(notice.organization_id, notice.type, notice.locale)], context)
        except (RenderError, TemplateCompileError) as exc:
            batch.outcomes[notice.pk] = Outcome(parked=True,
                                                error=f"template {notice.type} ({notice.locale}): {exc}"[:1000])
            continue
        except TypeError as exc:  # context that is not plain data: a bug, kept visible on the row
            batch.outcomes[notice.pk] = Outcome(parked=True, error=f"bad template context: {exc}"[:1000])
            continue
        batch.rendered[notice.pk] = message
        if notice.channel == "email":
            try:
                batch.emails.append((notice, build_email(notice, message, context)))
            except ValueError as exc:  # an address or header that cannot be written
                batch.outcomes[notice.pk] = Outcome(error=f"invalid message: {exc}"[:1000], permanent=True)
        elif notice.channel == "webhook":
            batch.posts.append((notice, message))
        else:
            batch.outcomes[notice.pk] = Outcome(sent=True)
    return batch


def deliver_batch(*, limit: int = BATCH_SIZE) -> int:
    """Claim, render and send one batch of due notices; returns how many were handled."""
    token, notices = claim_due(now=clock.now(), limit=limit)
    if not notices:
        return 0
    batch = prepare_batch(notices)
    outcomes = batch.outcomes
    outcomes.update(send_emails(batch.emails))
    if batch.posts:
        outcomes.update(send_webhooks(batch.posts))
    in_app = {n.pk for n in notices if n.channel == "in_app"}
    for pk in in_app & batch.rendered.keys():
        outcomes[pk].subject, outcomes[pk].body_text = batch.rendered[pk].subject, batch.rendered[pk].text
    record_outcomes(token, notices, outcomes)
    return len(notices)


def deliver_due(*, max_batches: int | None = None) -> int:
    total, batches = 0, 0
    while (max_batches is None or batches < max_batches) and not stopping.requested():
        handled = deliver_batch()
        total += handled
        batches += 1
        if not handled:
            break
    return total


def notification_delivery_sweep(run) -> None:
    """The `notification-delivery` job: the safety net behind the drainer that runs in every worker."""
    handled = deliver_due()
    run.done += handled
    run.count("notices", handled)
