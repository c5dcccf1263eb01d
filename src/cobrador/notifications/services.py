"""Notifications: settings, templates, preferences and the notices themselves. Services never commit:
the API or task boundary does.

A notice is written as one outbox row per channel (`enqueue_notices`) in the business transaction;
`delivery.deliver_batch` renders and sends them right after commit.
"""

import base64
import os
import string
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core import signing
from django.db import IntegrityError, transaction
from django.db.models import Q

from cobrador.core import clock
from cobrador.core.bulk import insert_rows
from cobrador.core.errors import NotFound, ValidationFailed
from cobrador.core.ids import new_public_id
from cobrador.core.outbox import wake_outbox_after_commit
from cobrador.customers.models import BillingAccount, PaymentMethod
from cobrador.notifications import registry
from cobrador.notifications.defaults import TemplateParts, default_template
from cobrador.notifications.errors import NotificationWebhookNotSet
from cobrador.notifications.formatting import LOCALES
from cobrador.notifications.models import (
    AccountNotificationSettings,
    Notice,
    NotificationOptOut,
    NotificationSettings,
    NotificationTemplate,
)
from cobrador.notifications.rendering import RenderError, compile_errors, render, render_message
from cobrador.subscriptions import services as subscriptions
from cobrador.webhooks.ssrf import BlockedTarget, validate_webhook_url

URL_PLACEHOLDERS = ("account_id", "subscription_id", "payment_method_id", "invoice_id")
UNSUBSCRIBE_SALT = "cobrador.notifications.unsubscribe"
REQUEUE_PARKED_WITHIN = timedelta(days=7)


# --- the organization's settings ------------------------------------------------------------------------

def _new_settings(organization_id: int) -> NotificationSettings:
    return NotificationSettings(organization_id=organization_id, updated_at=clock.now(),
                                **{k: (list(v) if isinstance(v, list) else v)
                                   for k, v in NotificationSettings.DEFAULTS.items()})


def notification_settings(organization, *, for_update: bool = False) -> NotificationSettings:
    """The organization's settings row, created with the defaults on first use."""
    rows = NotificationSettings.objects.filter(organization=organization)
    if for_update:
        rows = rows.select_for_update()
    found = rows.first()
    if found is not None:
        return found
    try:
        with transaction.atomic():
            _new_settings(organization.pk).save()
    except IntegrityError:  # created concurrently
        pass
    return rows.get()


def settings_for_organizations(organization_ids) -> dict[int, NotificationSettings]:
    """Settings of many organizations in one query; defaults (unsaved) for those without a row."""
    found = {s.organization_id: s for s in NotificationSettings.objects.filter(organization_id__in=organization_ids)}
    return {org_id: found.get(org_id) or _new_settings(org_id) for org_id in organization_ids}


def settings_data(config: NotificationSettings) -> dict:
    return {
        "id": config.public_id,
        "object": "notification_settings",
        "invoice_due_soon_days": config.invoice_due_soon_days,
        "invoice_overdue_days": list(config.invoice_overdue_days),
        "trial_ending_days": config.trial_ending_days,
        "card_expiring_days": list(config.card_expiring_days),
        # A subscription policy (subscriptions.SubscriptionSettings), served here where clients find it.
        "renewal_prompt_days": subscriptions.renewal_prompt_days(config.organization_id),
        "update_card_url": config.update_card_url or None,
        "confirm_renewal_url": config.confirm_renewal_url or None,
        "mandatory_types": list(config.mandatory_types),
        "organization_locale": config.organization_locale,
        "updated_at": config.updated_at,
    }


def check_url_template(value: str, field_name: str) -> None:
    """An http(s) URL whose only {placeholders} are URL_PLACEHOLDERS."""
    try:
        parts = list(string.Formatter().parse(value))
    except ValueError as exc:
        raise ValidationFailed(f"{field_name}: {exc}", field=field_name) from exc
    for _, name, spec, conversion in parts:
        if name is None:
            continue
        if name not in URL_PLACEHOLDERS or spec or conversion:
            raise ValidationFailed(f"{field_name}: unknown placeholder {{{name}}}; use "
                                   + ", ".join(f"{{{p}}}" for p in URL_PLACEHOLDERS), field=field_name)
    example = build_link(value, account_id="ba_x", subscription_id="sub_x", payment_method_id="pm_x",
                         invoice_id="in_x")
    parsed = urlsplit(example)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationFailed(f"{field_name}: must be an http or https URL", field=field_name)


def build_link(url_template: str, **ids: str | None) -> str:
    if not url_template:
        return ""
    values = {name: quote(ids.get(name) or "", safe="") for name in URL_PLACEHOLDERS}
    return url_template.format(**values)


def update_notification_settings(*, organization, changes: dict) -> NotificationSettings:
    """Apply already-typed `changes` (the schema checked ranges and types)."""
    for name in ("update_card_url", "confirm_renewal_url"):
        if changes.get(name):
            check_url_template(changes[name], name)
        elif name in changes:
            changes[name] = ""
    if "mandatory_types" in changes:
        unknown = [t for t in changes["mandatory_types"] if t not in registry.ACCOUNT_TYPES]
        if unknown:
            raise ValidationFailed(f"mandatory_types: unknown notification types: {', '.join(unknown)}",
                                   field="mandatory_types")
        changes["mandatory_types"] = sorted(set(changes["mandatory_types"]))
    for name in ("invoice_overdue_days", "card_expiring_days"):
        if name in changes:
            changes[name] = sorted(set(changes[name]))
    config = notification_settings(organization, for_update=True)
    days = changes.pop("renewal_prompt_days", None)
    days_changed = days is not None and days != subscriptions.renewal_prompt_days(organization)
    if days_changed:
        subscriptions.set_renewal_prompt_days(organization=organization, days=days)
    changed = [name for name, value in changes.items() if getattr(config, name) != value]
    for name in changed:
        setattr(config, name, changes[name])
    if changed or days_changed:
        config.updated_at = clock.now()
        config.save(update_fields=[*changed, "updated_at"])
    return config


# --- templates ------------------------------------------------------------------------------------------

def editable_type(type_name: str):
    kind = registry.TYPES.get(type_name)
    if kind is None or not kind.editable:
        raise NotFound(f"no notification type {type_name!r}; editable types: {', '.join(registry.ACCOUNT_TYPES)}")
    return kind


def check_locale(locale: str) -> str:
    if locale not in LOCALES:
        raise ValidationFailed(f"locale must be one of {', '.join(LOCALES)}", field="locale")
    return locale


def custom_template(organization, type_name: str, locale: str) -> NotificationTemplate | None:
    return NotificationTemplate.objects.filter(organization=organization, type=type_name, locale=locale).first()


def effective_template(organization, type_name: str, locale: str) -> tuple[TemplateParts, NotificationTemplate | None]:
    custom = custom_template(organization, type_name, locale) if registry.TYPES[type_name].editable else None
    if custom is not None:
        return TemplateParts(custom.subject, custom.html_body, custom.text_body), custom
    return default_template(type_name, locale), None


def template_data(type_name: str, locale: str, parts: TemplateParts, custom: NotificationTemplate | None) -> dict:
    kind = registry.TYPES[type_name]
    return {
        "id": custom.public_id if custom else None,
        "object": "notification_template",
        "type": type_name,
        "locale": locale,
        "subject": parts.subject,
        "html_body": parts.html_body,
        "text_body": parts.text_body,
        "is_default": custom is None,
        "description": kind.description,
        "variables": ["organization", "account", "link", "unsubscribe_url", "locale", *kind.context_keys],
        "updated_at": custom.updated_at if custom else None,
    }


def _check_parts(type_name: str, locale: str, parts: TemplateParts, organization_name: str) -> None:
    """422 for a part that does not compile (with its line), or that fails on the sample data."""
    sources = {"subject": parts.subject, "html_body": parts.html_body, "text_body": parts.text_body}
    errors = compile_errors(sources)
    if errors:
        first = errors[0]
        raise ValidationFailed(f"{first['field']}: {first['message']}", field=first["field"],
                               errors=[{"field": e["field"], "line": e["line"], "message": e["message"]}
                                       for e in errors])
    context = registry.sample_context(type_name, locale, organization_name)
    for field_name, source in sources.items():
        try:
            render(source, context, html=field_name == "html_body")
        except RenderError as exc:
            raise ValidationFailed(f"{field_name}: fails with the sample data: {exc}", field=field_name) from exc


def _requeue_parked(organization, type_name: str, locale: str) -> int:
    """Notices parked by the old template get another chance (only recent ones: old news stays parked)."""
    now = clock.now()
    count = Notice.objects.filter(organization=organization, type=type_name, locale=locale, status="parked",
                                  created_at__gte=now - REQUEUE_PARKED_WITHIN).update(
        status="pending", next_attempt_at=now, last_error="", claim_token="")
    if count:
        wake_outbox_after_commit()
    return count


def save_template(*, organization, type_name: str, locale: str, subject: str, html_body: str,
                  text_body: str) -> NotificationTemplate:
    editable_type(type_name)
    check_locale(locale)
    parts = TemplateParts(subject, html_body, text_body)
    _check_parts(type_name, locale, parts, organization.name)
    now = clock.now()
    template, created = NotificationTemplate.objects.select_for_update().get_or_create(
        organization=organization, type=type_name, locale=locale,
        defaults={"subject": subject, "html_body": html_body, "text_body": text_body, "created_at": now,
                  "updated_at": now})
    if not created:
        template.subject, template.html_body, template.text_body, template.updated_at = \
            subject, html_body, text_body, now
        template.save(update_fields=["subject", "html_body", "text_body", "updated_at"])
    _requeue_parked(organization, type_name, locale)
    return template


def reset_template(*, organization, type_name: str, locale: str) -> None:
    editable_type(type_name)
    check_locale(locale)
    NotificationTemplate.objects.filter(organization=organization, type=type_name, locale=locale).delete()
    _requeue_parked(organization, type_name, locale)


def preview_template(*, organization, type_name: str, locale: str, draft: dict | None = None) -> dict:
    """Render the saved template (or `draft` parts over it) with sample data."""
    editable_type(type_name)
    check_locale(locale)
    parts, _ = effective_template(organization, type_name, locale)
    if draft:
        parts = TemplateParts(draft.get("subject", parts.subject), draft.get("html_body", parts.html_body),
                              draft.get("text_body", parts.text_body))
        errors = compile_errors({k: v for k, v in draft.items() if k in ("subject", "html_body", "text_body")})
        if errors:
            first = errors[0]
            raise ValidationFailed(f"{first['field']}: {first['message']}", field=first["field"], errors=errors)
    context = registry.sample_context(type_name, locale, organization.name)
    try:
        message = render_message(subject=parts.subject, html_body=parts.html_body, text_body=parts.text_body,
                                 context=context)
    except RenderError as exc:
        raise ValidationFailed(f"the template fails with the sample data: {exc}", field="template") from exc
    return {"object": "notification_preview", "type": type_name, "locale": locale, "subject": message.subject,
            "html": message.html, "text": message.text, "context": context}


def send_test(*, organization, type_name: str, locale: str, to: str) -> Notice:
    """A test e-mail of the current template with sample data, through the outbox like any notice."""
    editable_type(type_name)
    check_locale(locale)
    now = clock.now()
    notice = Notice.objects.create(
        organization=organization, type=type_name, channel="email", dedupe_key=f"test:{new_public_id('t')}",
        locale=locale, recipient=to, context=registry.sample_context(type_name, locale, organization.name),
        link="https://example.com/billing", is_test=True, next_attempt_at=now, created_at=now)
    wake_outbox_after_commit()
    return notice


# --- preferences ----------------------------------------------------------------------------------------

def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def account_settings(account) -> AccountNotificationSettings | None:
    return AccountNotificationSettings.objects.filter(account=account).first()


def preferences_data(account, *, secret: str | None = None) -> dict:
    config = NotificationSettings.objects.filter(organization_id=account.organization_id).first() \
        or _new_settings(account.organization_id)
    opted_out = set(NotificationOptOut.objects.filter(account=account).values_list("type", "channel"))
    hook = account_settings(account)
    rows = []
    for type_name in registry.ACCOUNT_TYPES:
        mandatory = type_name in config.mandatory_types
        rows.append({"type": type_name, "mandatory": mandatory,
                     "channels": {channel: mandatory or (type_name, channel) not in opted_out
                                  for channel in registry.TYPES[type_name].channels}})
    return {"object": "notification_preferences", "account_id": account.public_id, "preferences": rows,
            "webhook_url": (hook.webhook_url or None) if hook else None, "webhook_secret": secret}


def _check_webhook_url(url: str) -> None:
    try:
        validate_webhook_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except BlockedTarget as exc:
        raise ValidationFailed(f"webhook_url: {exc}", field="webhook_url") from exc


def update_preferences(*, account, changes: list[dict], webhook_url=...) -> str | None:
    """Apply opt-out changes ([{type, channel, enabled}]) and the webhook URL (Ellipsis: unchanged,
    None or "": removed). Returns the new webhook secret when one was made, else None."""
    config = NotificationSettings.objects.filter(organization_id=account.organization_id).first() \
        or _new_settings(account.organization_id)
    for i, change in enumerate(changes):
        if change["type"] not in registry.ACCOUNT_TYPES:
            raise ValidationFailed(f"preferences.{i}.type: unknown notification type", field=f"preferences.{i}.type")
        if not change["enabled"] and change["type"] in config.mandatory_types:
            raise ValidationFailed(f"preferences.{i}.type: {change['type']} is mandatory for this organization "
                                   "and cannot be turned off", field=f"preferences.{i}.type")
    if webhook_url not in (..., None, ""):
        _check_webhook_url(webhook_url)
    now = clock.now()
    for change in changes:
        key = {"account": account, "type": change["type"], "channel": change["channel"]}
        if change["enabled"]:
            NotificationOptOut.objects.filter(**key).delete()
        elif not NotificationOptOut.objects.filter(**key).exists():
            NotificationOptOut.objects.create(organization_id=account.organization_id, created_at=now, **key)
    if webhook_url is ...:
        return None
    hook, _ = AccountNotificationSettings.objects.select_for_update().get_or_create(
        account=account, defaults={"organization_id": account.organization_id, "updated_at": now})
    secret = None
    if not webhook_url:
        hook.webhook_url, hook.webhook_secret = "", ""
    else:
        if not hook.webhook_secret:
            secret = hook.webhook_secret = new_webhook_secret()
        hook.webhook_url = webhook_url
    hook.updated_at = now
    hook.save(update_fields=["webhook_url", "webhook_secret", "updated_at"])
    return secret


def rotate_account_webhook_secret(*, account) -> str:
    hook = AccountNotificationSettings.objects.select_for_update().filter(account=account).first()
    if hook is None or not hook.webhook_url:
        raise NotificationWebhookNotSet("webhook_url: set a notification webhook URL first", field="webhook_url")
    hook.webhook_secret = new_webhook_secret()
    hook.updated_at = clock.now()
    hook.save(update_fields=["webhook_secret", "updated_at"])
    return hook.webhook_secret


def unsubscribe_token(account_public_id: str, type_name: str) -> str:
    return signing.dumps([account_public_id, type_name], salt=UNSUBSCRIBE_SALT, compress=False)


def unsubscribe_url(account_public_id: str, type_name: str) -> str:
    return f"{settings.PUBLIC_URL}/v1/notifications/unsubscribe?token={unsubscribe_token(account_public_id, type_name)}"


@dataclass
class UnsubscribeResult:
    account_name: str
    organization_name: str
    type: str
    mandatory: bool


def read_unsubscribe_token(token: str):
    try:
        account_id, type_name = signing.loads(token, salt=UNSUBSCRIBE_SALT)
        account = BillingAccount.objects.select_related("organization").get(public_id=account_id)
    except (signing.BadSignature, ValueError, TypeError, BillingAccount.DoesNotExist):
        raise NotFound("this unsubscribe link is not valid") from None
    if type_name not in registry.ACCOUNT_TYPES:
        raise NotFound("this unsubscribe link is not valid")
    return account, type_name


def unsubscribe(*, token: str) -> UnsubscribeResult:
    """One-click unsubscribe (RFC 8058): no more e-mails of this type. A mandatory type stays on."""
    account, type_name = read_unsubscribe_token(token)
    config = NotificationSettings.objects.filter(organization_id=account.organization_id).first() \
        or _new_settings(account.organization_id)
    mandatory = type_name in config.mandatory_types
    if not mandatory:
        NotificationOptOut.objects.bulk_create(
            [NotificationOptOut(organization_id=account.organization_id, account=account, type=type_name,
                                channel="email", source="unsubscribe_link", created_at=clock.now())],
            ignore_conflicts=True)
    return UnsubscribeResult(account.name, account.organization.name, type_name, mandatory)


# --- notices --------------------------------------------------------------------------------------------

@dataclass
class NoticeDraft:
    """What to tell whom. `key` names the entity and period (e.g. "pm_x:2026-12:30"); with the type and
    the channel it makes the dedupe key."""

    organization: object
    type: str
    key: str
    context: dict = field(default_factory=dict)
    account: object | None = None  # account audience
    link: str = ""
    recipient: str = ""  # organization audience, or a prospect (no account yet): the e-mail address
    locale: str = ""  # a prospect's language (an account's is on the account)


def notice_dedupe_key(type_name: str, key: str, channel: str) -> str:
    return f"{type_name}:{key}:{channel}"


def existing_notice_keys(type_name: str, keys: list[str]) -> set[str]:
    """Those of `keys` (NoticeDraft keys of one type) whose notices were written already. A draft's
    notices are written at once, on the channels the account took then: one of them is enough."""
    channels = registry.TYPES[type_name].channels
    if not keys:
        return set()
    written = set(Notice.objects.filter(dedupe_key__in=[
        notice_dedupe_key(type_name, key, channel) for key in keys for channel in channels]
    ).values_list("dedupe_key", flat=True))
    return {key for key in keys if any(notice_dedupe_key(type_name, key, c) in written for c in channels)}


# A notice row as enqueue_notices writes it (without model instances: a sweep writes thousands).
NOTICE_ROW_FIELDS = ["public_id", "organization", "account", "type", "channel", "dedupe_key", "locale", "recipient",
                     "context", "link", "next_attempt_at", "created_at", "is_test", "status", "attempts",
                     "claim_token", "last_error", "subject", "body_text", "read_at", "sent_at"]
NOTICE_ROW_DEFAULTS = (False, "pending", 0, "", "", "", "", None, None)


def enqueue_notices(drafts: list[NoticeDraft], *, configs: dict[int, NotificationSettings] | None = None) -> int:
    """Write one outbox row per (draft, channel) the account takes; returns how many rows were offered
    (rows whose dedupe key exists already are skipped by the database). `configs`: the organizations'
    settings (settings_for_organizations) when the caller has them already."""
    if not drafts:
        return 0
    now = clock.now()
    account_ids = {d.account.pk for d in drafts if d.account is not None}
    opted_out = set(NotificationOptOut.objects.filter(account_id__in=account_ids)
                    .values_list("account_id", "type", "channel")) if account_ids else set()
    webhook_urls = dict(AccountNotificationSettings.objects.filter(account_id__in=account_ids)
                        .exclude(webhook_url="").values_list("account_id", "webhook_url")) if account_ids else {}
    organization_ids = {d.organization.pk for d in drafts}
    if configs is None or not organization_ids <= set(configs):
        configs = settings_for_organizations(organization_ids)
    def new_row(draft, account_id, channel, locale, recipient, context) -> tuple:  # NOTICE_ROW_FIELDS
        return (new_public_id("ntf"), draft.organization.pk, account_id, draft.type, channel,
                notice_dedupe_key(draft.type, draft.key, channel), locale, recipient, context, draft.link, now, now,
                *NOTICE_ROW_DEFAULTS)

    rows = []
    for draft in drafts:
        kind = registry.TYPES[draft.type]
        config = configs[draft.organization.pk]
        context = {"organization": {"name": draft.organization.name}, "link": draft.link, **draft.context}
        if kind.audience == registry.ORGANIZATION:
            if draft.recipient:
                rows.append(new_row(draft, None, "email", config.organization_locale, draft.recipient,
                                    {**context, "locale": config.organization_locale}))
            continue
        account = draft.account
        if account is None:
            # A prospect (a proposal's customer before acceptance): e-mail only, no preferences yet.
            if draft.recipient and "email" in kind.channels:
                rows.append(new_row(draft, None, "email", draft.locale, draft.recipient,
                                    {**context, "locale": draft.locale}))
            continue
        context["account"] = {"id": account.public_id, "name": account.name, "email": account.email}
        context["locale"] = account.locale
        mandatory = draft.type in config.mandatory_types
        for channel in kind.channels:
            if not mandatory and (account.pk, draft.type, channel) in opted_out:
                continue
            recipient = {"email": account.email, "webhook": webhook_urls.get(account.pk, ""), "in_app": None}[channel]
            if recipient == "":
                continue
            rows.append(new_row(draft, account.pk, channel, account.locale, recipient or "", context))
    # A notice already sent under its dedupe key is not sent again.
    insert_rows(Notice, NOTICE_ROW_FIELDS, rows, ignore_conflicts=True)
    if rows:
        wake_outbox_after_commit()
    return len(rows)


def notice_data(notice: Notice) -> dict:
    return {
        "id": notice.public_id,
        "object": "notification",
        "type": notice.type,
        "account_id": notice.account.public_id if notice.account_id else None,
        "subject": notice.subject,
        "body": notice.body_text,
        "link": notice.link or None,
        "read": notice.read_at is not None,
        "read_at": notice.read_at,
        "created_at": notice.created_at,
    }


def mark_read(*, notice: Notice) -> Notice:
    if notice.read_at is None:
        notice.read_at = clock.now()
        notice.save(update_fields=["read_at"])
    return notice


def mark_all_read(*, account) -> int:
    return Notice.objects.filter(account=account, channel="in_app", status="sent", read_at__isnull=True).update(
        read_at=clock.now())


# --- what notices say -----------------------------------------------------------------------------------

def trials_with_payment_method(trials) -> set[tuple[int, str | None]]:
    """Of `trials`, (account id, the subscription's payment method public id or None) pairs, those that
    can be charged when the trial ends: the subscription's own method is still active, or the account
    has an active default one. One query."""
    trials = set(trials)
    if not trials:
        return set()
    active = list(PaymentMethod.objects.filter(
        Q(account_id__in={account for account, _ in trials}, is_default=True)
        | Q(public_id__in={method for _, method in trials if method}), status="active",
    ).values_list("account_id", "public_id", "is_default"))
    with_default = {account for account, _, is_default in active if is_default}
    active_ids = {public_id for _, public_id, _ in active}
    return {(account, method) for account, method in trials if account in with_default or method in active_ids}


def send_again(*, notice_ids) -> int:
    """An operator unparks notices: failed or parked ones become due now (same Message-ID) and the
    delivery loop is woken after commit. Returns how many were requeued."""
    count = Notice.objects.filter(pk__in=list(notice_ids), status__in=["failed", "parked"]).update(
        status="pending", next_attempt_at=clock.now(), last_error="", claim_token="")
    if count:
        wake_outbox_after_commit()
    return count
