from typing import Literal

from django.db import transaction
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.utils.html import escape
from ninja import Router, Status

from cobrador.core.errors import ApiError, errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.customers.models import BillingAccount
from cobrador.notifications import registry, services
from cobrador.notifications.errors import NotificationWebhookNotSet
from cobrador.notifications.formatting import LOCALES
from cobrador.notifications.models import Notice, NotificationTemplate
from cobrador.notifications.schemas import (
    NotificationOut,
    NotificationPage,
    NotificationSettingsOut,
    NotificationSettingsPatch,
    PreferencesOut,
    PreferencesPatch,
    PreviewOut,
    TemplateDraft,
    TemplateIn,
    TemplateList,
    TemplateOut,
    TestSendIn,
    TestSendOut,
)

router = Router(tags=["notifications"])
Locale = Literal[LOCALES]
register_path_id("notification_type", lambda organization, value: value in registry.TYPES
                 and registry.TYPES[value].editable)
register_path_id("notification_id", lambda organization, value: Notice.objects.filter(
    organization=organization, channel="in_app", status="sent", public_id=value).exists())


def _account(request, account_id: str) -> BillingAccount:
    return get_object_or_404(BillingAccount, organization=request.auth, public_id=account_id)


# --- the organization's schedule ------------------------------------------------------------------------

@router.get("/organizations/settings/notifications", response=NotificationSettingsOut,
            summary="Get the notification schedule")
def get_notification_settings(request):
    return services.settings_data(services.notification_settings(request.auth))


@router.patch("/organizations/settings/notifications", response=NotificationSettingsOut,
              summary="Change the notification schedule")
def patch_notification_settings(request, payload: NotificationSettingsPatch):
    with transaction.atomic():
        config = services.update_notification_settings(organization=request.auth,
                                                       changes=payload.model_dump(exclude_unset=True))
    return services.settings_data(config)


# --- templates ------------------------------------------------------------------------------------------

@router.get("/notification_templates", response=TemplateList, summary="List notification templates")
def list_notification_templates(request):
    custom = {(t.type, t.locale): t for t in NotificationTemplate.objects.filter(organization=request.auth)}
    return {"data": [{"type": type_name, "locale": locale, "is_default": (type_name, locale) not in custom,
                      "updated_at": custom[(type_name, locale)].updated_at if (type_name, locale) in custom else None}
                     for type_name in registry.ACCOUNT_TYPES for locale in LOCALES]}


@router.get("/notification_templates/{notification_type}", response=TemplateOut,
            summary="Get a notification template (yours, or the default)")
def get_notification_template(request, notification_type: str, locale: Locale = "pt-BR"):
    services.editable_type(notification_type)
    services.check_locale(locale)
    parts, custom = services.effective_template(request.auth, notification_type, locale)
    return services.template_data(notification_type, locale, parts, custom)


@router.put("/notification_templates/{notification_type}", response=TemplateOut,
            summary="Replace a notification template")
def put_notification_template(request, notification_type: str, payload: TemplateIn, locale: Locale = "pt-BR"):
    """A part that does not compile is a 422 naming the part and the line; so is one that fails to render
    with the sample data. Saving re-queues notices this template parked in the last 7 days."""
    with transaction.atomic():
        services.save_template(organization=request.auth, type_name=notification_type, locale=locale,
                               **payload.model_dump())
    parts, custom = services.effective_template(request.auth, notification_type, locale)
    return services.template_data(notification_type, locale, parts, custom)


@router.delete("/notification_templates/{notification_type}", response=TemplateOut,
               summary="Go back to the default template")
def delete_notification_template(request, notification_type: str, locale: Locale = "pt-BR"):
    with transaction.atomic():
        services.reset_template(organization=request.auth, type_name=notification_type, locale=locale)
    parts, custom = services.effective_template(request.auth, notification_type, locale)
    return services.template_data(notification_type, locale, parts, custom)


@router.post("/notification_templates/{notification_type}/preview", response=PreviewOut,
             summary="Render a template with sample data")
def preview_notification_template(request, notification_type: str, locale: Locale = "pt-BR",
                                  payload: TemplateDraft | None = None):
    """Without a body: the saved template. With parts in the body: those parts instead (nothing is saved)."""
    draft = payload.model_dump(exclude_unset=True) if payload is not None else None
    return services.preview_template(organization=request.auth, type_name=notification_type, locale=locale,
                                     draft=draft)


@router.post("/notification_templates/{notification_type}/test", response={202: TestSendOut},
             summary="E-mail the template, with sample data, to an address")
def test_notification_template(request, notification_type: str, payload: TestSendIn, locale: Locale = "pt-BR"):
    with transaction.atomic():
        notice = services.send_test(organization=request.auth, type_name=notification_type, locale=locale,
                                    to=payload.to)
    return Status(202, {"id": notice.public_id, "status": notice.status, "to": notice.recipient})


# --- a billing account's notices and preferences --------------------------------------------------------

@router.get("/billing_accounts/{account_id}/notifications", response=NotificationPage,
            summary="List a billing account's in-app notifications")
def list_notifications(request, account_id: str, unread: bool | None = None, limit: Limit = 20,
                       cursor: str | None = None):
    notices = Notice.objects.filter(account=_account(request, account_id), channel="in_app", status="sent") \
        .select_related("account")
    if unread is not None:
        notices = notices.filter(read_at__isnull=unread)
    return paginate(notices, cursor=cursor, limit=limit, serialize=services.notice_data)


@router.post("/billing_accounts/{account_id}/notifications/read_all", response={200: dict},
             summary="Mark all in-app notifications read")
def read_all_notifications(request, account_id: str):
    with transaction.atomic():
        count = services.mark_all_read(account=_account(request, account_id))
    return {"object": "list", "marked_read": count}


@router.post("/billing_accounts/{account_id}/notifications/{notification_id}/read", response=NotificationOut,
             summary="Mark an in-app notification read")
def read_notification(request, account_id: str, notification_id: str):
    with transaction.atomic():
        notice = get_object_or_404(Notice.objects.select_related("account"), account=_account(request, account_id),
                                   channel="in_app", status="sent", public_id=notification_id)
        services.mark_read(notice=notice)
    return services.notice_data(notice)


@router.get("/billing_accounts/{account_id}/notification_preferences", response=PreferencesOut,
            summary="Get a billing account's notification preferences")
def get_notification_preferences(request, account_id: str):
    return services.preferences_data(_account(request, account_id))


@router.patch("/billing_accounts/{account_id}/notification_preferences", response=PreferencesOut,
              summary="Opt in or out per (type, channel); set the account's notification webhook")
def patch_notification_preferences(request, account_id: str, payload: PreferencesPatch):
    account = _account(request, account_id)
    fields = payload.model_dump(exclude_unset=True)
    with transaction.atomic():
        secret = services.update_preferences(account=account, changes=fields.get("preferences", []),
                                             webhook_url=fields.get("webhook_url", ...))
    return services.preferences_data(account, secret=secret)


@router.post("/billing_accounts/{account_id}/notification_preferences/rotate_webhook_secret",
             response={200: PreferencesOut, **errors(NotificationWebhookNotSet)},
             summary="Make a new signing secret for the account's notification webhook")
def rotate_notification_webhook_secret(request, account_id: str):
    account = _account(request, account_id)
    with transaction.atomic():
        secret = services.rotate_account_webhook_secret(account=account)
    return services.preferences_data(account, secret=secret)


# --- one-click unsubscribe (the link in every e-mail; no API key) ---------------------------------------

_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>{title}</title></head><body style="font-family:Helvetica,Arial,sans-serif;max-width:480px;margin:48px auto;
padding:0 16px;color:#1f2933;"><h1 style="font-size:20px;">{title}</h1><p>{body}</p>{form}</body></html>"""


def _page(title: str, body: str, form: str = "", status: int = 200) -> HttpResponse:
    return HttpResponse(_PAGE.format(title=escape(title), body=body, form=form), status=status,
                        content_type="text/html; charset=utf-8")


@router.get("/notifications/unsubscribe", auth=None, include_in_schema=False)
def unsubscribe_page(request, token: str = ""):
    """A person who clicks the link confirms with a button (link scanners that GET it change nothing)."""
    try:
        account, type_name = services.read_unsubscribe_token(token)
    except ApiError:
        return _page("Link inválido / Invalid link", "Este link de cancelamento não é válido. "
                     "This unsubscribe link is not valid.", status=404)
    form = (f'<form method="post"><input type="hidden" name="token" value="{escape(token)}">'
            '<button type="submit" style="padding:10px 16px;">Cancelar / Unsubscribe</button></form>')
    return _page("Cancelar e-mails / Unsubscribe",
                 f"Parar de receber e-mails <strong>{escape(type_name)}</strong> "
                 f"de {escape(account.organization.name)} "
                 f"em {escape(account.email)}? / Stop receiving <strong>{escape(type_name)}</strong> e-mails?", form)


@router.post("/notifications/unsubscribe", auth=None, include_in_schema=False)
def unsubscribe_one_click(request, token: str = ""):
    """RFC 8058 one-click: mail programs POST `List-Unsubscribe=One-Click` to the List-Unsubscribe URL."""
    token = token or request.POST.get("token", "")
    try:
        with transaction.atomic():
            result = services.unsubscribe(token=token)
    except ApiError:
        return _page("Link inválido / Invalid link", "Este link de cancelamento não é válido. "
                     "This unsubscribe link is not valid.", status=404)
    if result.mandatory:
        return _page("Mensagem obrigatória / Required message",
                     f"{escape(result.organization_name)} precisa enviar estes avisos ({escape(result.type)}); "
                     "não é possível cancelá-los. / These notices are required and cannot be turned off.")
    return _page("Pronto / Done", f"Você não receberá mais e-mails {escape(result.type)} de "
                 f"{escape(result.organization_name)}. / You will no longer get these e-mails.")
