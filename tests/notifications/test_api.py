"""The notification API: the schedule, templates (preview, test send), preferences and in-app notices."""

import pytest

from cobrador.notifications.models import AccountNotificationSettings, Notice, NotificationTemplate
from tests.notifications.conftest import drain, emit_invoice_created, make_account, make_invoice

SETTINGS = "/v1/organizations/settings/notifications"
TEMPLATES = "/v1/notification_templates"


def prefs_url(account) -> str:
    return f"/v1/billing_accounts/{account.public_id}/notification_preferences"


# --- the schedule ---------------------------------------------------------------------------------------

def test_the_schedule_has_the_issue_defaults(api, clock):
    body = api.get(SETTINGS).json()
    assert {k: body[k] for k in ("invoice_due_soon_days", "invoice_overdue_days", "trial_ending_days",
                                 "card_expiring_days", "renewal_prompt_days", "update_card_url",
                                 "confirm_renewal_url", "mandatory_types")} == {
        "invoice_due_soon_days": 3, "invoice_overdue_days": [1, 7], "trial_ending_days": 3,
        "card_expiring_days": [30], "renewal_prompt_days": 15, "update_card_url": None,
        "confirm_renewal_url": None, "mandatory_types": []}
    assert body["object"] == "notification_settings" and body["id"].startswith("ns_")


def test_patch_changes_only_what_is_sent(api, clock):
    response = api.patch(SETTINGS, {"invoice_overdue_days": [15, 1, 7], "card_expiring_days": [7, 30],
                                    "update_card_url": "https://app.acme.test/billing/{account_id}/card",
                                    "mandatory_types": ["payment_failed"]})
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["invoice_overdue_days"] == [1, 7, 15]
    assert body["card_expiring_days"] == [7, 30]
    assert body["update_card_url"] == "https://app.acme.test/billing/{account_id}/card"
    assert body["mandatory_types"] == ["payment_failed"]
    assert body["trial_ending_days"] == 3
    assert api.get(SETTINGS).json() == body
    assert api.patch(SETTINGS, {"update_card_url": None}).json()["update_card_url"] is None


@pytest.mark.parametrize("payload,field", [
    ({"invoice_due_soon_days": -1}, "invoice_due_soon_days"),
    ({"invoice_due_soon_days": 61}, "invoice_due_soon_days"),
    ({"invoice_due_soon_days": "3"}, "invoice_due_soon_days"),
    ({"invoice_due_soon_days": None}, "invoice_due_soon_days"),
    ({"invoice_overdue_days": []}, "invoice_overdue_days"),
    ({"invoice_overdue_days": [0]}, "invoice_overdue_days.0"),
    ({"invoice_overdue_days": [1, 1]}, "invoice_overdue_days"),
    ({"invoice_overdue_days": 7}, "invoice_overdue_days"),
    ({"trial_ending_days": 0}, "trial_ending_days"),
    ({"card_expiring_days": [91]}, "card_expiring_days.0"),
    ({"card_expiring_days": [1, 2, 3, 4, 5, 6]}, "card_expiring_days"),
    ({"renewal_prompt_days": 0}, "renewal_prompt_days"),
    ({"update_card_url": "ftp://x.test/{account_id}"}, "update_card_url"),
    ({"update_card_url": "https://x.test/{customer}"}, "update_card_url"),
    ({"update_card_url": "https://x.test/{account_id!r}"}, "update_card_url"),
    ({"confirm_renewal_url": "not a url"}, "confirm_renewal_url"),
    ({"confirm_renewal_url": "https://x.test/{"}, "confirm_renewal_url"),
    ({"mandatory_types": ["invoice_exploded"]}, "mandatory_types"),
    ({"mandatory_types": ["template_failed"]}, "mandatory_types"),
    ({"organization_locale": "fr"}, "organization_locale"),
    ({"quiet_hours": True}, "quiet_hours"),
])
def test_bad_schedule_values_are_422_by_field_and_change_nothing(api, clock, payload, field):
    before = api.get(SETTINGS).json()
    response = api.patch(SETTINGS, payload)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get(SETTINGS).json() == before


# --- templates ------------------------------------------------------------------------------------------

def test_every_type_has_a_default_template_in_both_locales(api, clock):
    listing = api.get(TEMPLATES).json()["data"]
    assert len(listing) == 28 and all(t["is_default"] for t in listing)
    for locale, word in (("pt-BR", "Fatura"), ("en", "Invoice")):
        body = api.get(f"{TEMPLATES}/invoice_created", params={"locale": locale}).json()
        assert body["is_default"] and body["id"] is None and body["locale"] == locale
        assert body["subject"].startswith(word)
        assert "invoice" in body["variables"] and "{{ unsubscribe_url }}" in body["html_body"]


def test_put_replaces_the_template_for_one_locale(api, clock):
    payload = {"subject": "Nova fatura {{ invoice.number }}", "html_body": "<p>{{ account.name }}</p>",
               "text_body": "Oi {{ account.name }}"}
    response = api.put(f"{TEMPLATES}/invoice_created?locale=pt-BR", payload)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"].startswith("ntpl_") and not body["is_default"] and body["subject"] == payload["subject"]
    assert api.get(f"{TEMPLATES}/invoice_created", params={"locale": "en"}).json()["is_default"]
    assert api.get(f"{TEMPLATES}/invoice_created", params={"locale": "pt-BR"}).json()["html_body"] == \
        "<p>{{ account.name }}</p>"
    reset = api.delete(f"{TEMPLATES}/invoice_created?locale=pt-BR")
    assert reset.status_code == 200 and reset.json()["is_default"]
    assert not NotificationTemplate.objects.exists()


def test_a_template_that_does_not_compile_is_422_with_its_line(api, clock):
    response = api.put(f"{TEMPLATES}/invoice_created?locale=en", {
        "subject": "ok", "html_body": "<p>\n{{ account.name }\n</p>", "text_body": "{% for x in y %}"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "html_body" and error["message"].startswith("html_body: line 2: ")
    assert [(e["field"], e["line"]) for e in error["errors"]] == [("html_body", 2), ("text_body", 1)]
    assert not NotificationTemplate.objects.exists()


def test_a_template_that_fails_on_the_sample_data_is_422(api, clock):
    response = api.put(f"{TEMPLATES}/invoice_created?locale=en", {
        "subject": "ok", "html_body": "{{ 1 / 0 }}", "text_body": "x"})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "html_body"
    assert "ZeroDivisionError" in response.json()["error"]["message"]


@pytest.mark.parametrize("payload", [
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ range(10**9)|list }}",
])
def test_a_sandbox_escape_payload_is_refused_or_renders_harmlessly(api, clock, payload):
    response = api.put(f"{TEMPLATES}/invoice_created?locale=en", {"subject": "x", "html_body": payload,
                                                                  "text_body": "x"})
    if response.status_code == 422:
        assert response.json()["error"]["field"] == "html_body"
        return
    assert response.status_code == 200
    preview = api.post(f"{TEMPLATES}/invoice_created/preview?locale=en").json()
    assert "<class" not in preview["html"] and "os" not in preview["html"].split()


def test_preview_renders_sample_data_and_drafts_without_saving(api, clock):
    response = api.post(f"{TEMPLATES}/card_expiring/preview?locale=pt-BR")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["subject"] == "Seu cartão Visa final 4242 vence em breve"
    assert "Maria Silva" in body["text"] and body["html"].startswith("<!DOCTYPE html>")
    assert body["context"]["card"]["last4"] == "4242"

    draft = api.post(f"{TEMPLATES}/card_expiring/preview?locale=en", {"subject": "Card {{ card.last4 }}!"}).json()
    assert draft["subject"] == "Card 4242!" and "Mary Smith" in draft["text"]
    assert not NotificationTemplate.objects.exists()
    bad = api.post(f"{TEMPLATES}/card_expiring/preview?locale=en", {"text_body": "{{ oops"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "text_body"


@pytest.mark.parametrize("path,params,status,field", [
    (f"{TEMPLATES}/invoice_exploded", {"locale": "en"}, 404, None),
    (f"{TEMPLATES}/template_failed", {"locale": "en"}, 404, None),
    (f"{TEMPLATES}/invoice_created", {"locale": "fr"}, 422, "locale"),
])
def test_unknown_types_and_locales(api, clock, path, params, status, field):
    response = api.get(path, params=params)
    assert response.status_code == status
    assert response.json()["error"]["field"] == field


def test_test_send_mails_the_current_template_with_sample_data(api, clock, smtp):
    api.put(f"{TEMPLATES}/payment_failed?locale=en", {"subject": "Oops {{ invoice.number }}",
                                                      "html_body": "<p>{{ pix.copy_paste }}</p>",
                                                      "text_body": "retry {{ retry_date }}"})
    response = api.post(f"{TEMPLATES}/payment_failed/test?locale=en", {"to": "ops@acme.test"})
    assert response.status_code == 202, response.content
    assert response.json()["to"] == "ops@acme.test"

    drain()

    [mail] = smtp.wait_for(1)
    assert mail.rcpt_tos == ["ops@acme.test"]
    assert mail.message["Subject"] == "[TEST] Oops 1042"
    assert mail.message.get_body(("plain",)).get_content().strip() == "retry March 3, 2026"
    assert "00020126580014br.gov.bcb.pix" in mail.message.get_body(("html",)).get_content()
    assert api.post(f"{TEMPLATES}/payment_failed/test?locale=en", {"to": "not an address"}).status_code == 422


def test_another_organizations_templates_are_not_visible(api, other_api, clock):
    api.put(f"{TEMPLATES}/invoice_created?locale=en", {"subject": "Acme only", "html_body": "a", "text_body": "a"})
    theirs = other_api.get(f"{TEMPLATES}/invoice_created", params={"locale": "en"}).json()
    assert theirs["is_default"] and theirs["subject"] != "Acme only"
    assert "Acme only" not in other_api.post(f"{TEMPLATES}/invoice_created/preview?locale=en").json()["subject"]
    other_api.delete(f"{TEMPLATES}/invoice_created?locale=en")
    assert NotificationTemplate.objects.filter(organization=api.organization).count() == 1


# --- preferences ----------------------------------------------------------------------------------------

def test_preferences_list_every_type_and_channel(api, clock):
    account = make_account(api.organization)
    body = api.get(prefs_url(account)).json()
    assert body["account_id"] == account.public_id and body["webhook_url"] is None
    assert len(body["preferences"]) == 14
    assert all(p["channels"] == ({"email": True} if p["type"].startswith("proposal_") else
                                 {"email": True, "in_app": True, "webhook": True}) for p in body["preferences"])


def test_opting_out_and_back_in(api, clock):
    account = make_account(api.organization)
    response = api.patch(prefs_url(account), {"preferences": [
        {"type": "invoice_created", "channel": "email", "enabled": False},
        {"type": "card_expiring", "channel": "in_app", "enabled": False}]})
    assert response.status_code == 200, response.content
    by_type = {p["type"]: p["channels"] for p in response.json()["preferences"]}
    assert by_type["invoice_created"] == {"email": False, "in_app": True, "webhook": True}
    assert by_type["card_expiring"]["in_app"] is False
    api.patch(prefs_url(account), {"preferences": [{"type": "invoice_created", "channel": "email", "enabled": True}]})
    assert {p["type"]: p["channels"] for p in api.get(prefs_url(account)).json()["preferences"]}[
        "invoice_created"]["email"] is True


@pytest.mark.parametrize("payload,field", [
    ({"preferences": [{"type": "nope", "channel": "email", "enabled": False}]}, "preferences.0.type"),
    ({"preferences": [{"type": "invoice_created", "channel": "sms", "enabled": False}]}, "preferences.0.channel"),
    ({"preferences": [{"type": "invoice_created", "channel": "email", "enabled": "no"}]}, "preferences.0.enabled"),
    ({"preferences": [{"type": "payment_failed", "channel": "email", "enabled": False}]}, "preferences.0.type"),
    ({"webhook_url": "ftp://example.com/x"}, "webhook_url"),
    ({"preferences": None}, "preferences"),
    ({"sms": True}, "sms"),
])
def test_bad_preferences_are_422_and_change_nothing(api, clock, payload, field):
    api.patch(SETTINGS, {"mandatory_types": ["payment_failed"]})
    account = make_account(api.organization)
    before = api.get(prefs_url(account)).json()
    response = api.patch(prefs_url(account), payload)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert api.get(prefs_url(account)).json() == before


def test_the_notification_webhook_is_ssrf_guarded(api, clock, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    account = make_account(api.organization)
    for url in ("http://127.0.0.1:8080/hook", "http://169.254.169.254/latest/meta-data", "http://10.0.0.5/x"):
        response = api.patch(prefs_url(account), {"webhook_url": url})
        assert response.status_code == 422 and response.json()["error"]["field"] == "webhook_url"
    assert not AccountNotificationSettings.objects.exists()


def test_the_webhook_secret_is_shown_once_and_encrypted(api, clock, receiver):
    account = make_account(api.organization)
    body = api.patch(prefs_url(account), {"webhook_url": receiver.url}).json()
    assert body["webhook_url"] == receiver.url and body["webhook_secret"].startswith("whsec_")
    assert api.get(prefs_url(account)).json()["webhook_secret"] is None
    rotated = api.post(f"{prefs_url(account)}/rotate_webhook_secret").json()["webhook_secret"]
    assert rotated.startswith("whsec_") and rotated != body["webhook_secret"]
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT webhook_secret FROM notifications_accountnotificationsettings")
        [(raw,)] = cursor.fetchall()
    assert "whsec_" not in raw
    assert api.patch(prefs_url(account), {"webhook_url": None}).json()["webhook_url"] is None


# --- in-app notices -------------------------------------------------------------------------------------

def test_in_app_notices_are_listed_and_marked_read(api, clock, smtp):
    api.patch(SETTINGS, {"update_card_url": "https://app.acme.test/accounts/{account_id}/card"})
    account = make_account(api.organization, locale="en")
    emit_invoice_created(make_invoice(account, number=1))
    emit_invoice_created(make_invoice(account, number=2))
    drain()
    url = f"/v1/billing_accounts/{account.public_id}/notifications"

    page = api.get(url, params={"limit": 1}).json()
    assert page["has_more"] is True and len(page["data"]) == 1
    newest = page["data"][0]
    assert newest["subject"].startswith("Invoice 2 from Acme") and "Invoice 2 for R$199.00" in newest["body"]
    assert newest["read"] is False and newest["account_id"] == account.public_id
    older = api.get(url, params={"cursor": page["next_cursor"]}).json()["data"]
    assert [n["subject"][:9] for n in older] == ["Invoice 1"]

    read = api.post(f"{url}/{newest['id']}/read")
    assert read.status_code == 200 and read.json()["read"] is True and read.json()["read_at"]
    assert [n["id"] for n in api.get(url, params={"unread": "true"}).json()["data"]] == [older[0]["id"]]
    assert api.post(f"{url}/read_all").json()["marked_read"] == 1
    assert api.get(url, params={"unread": "true"}).json()["data"] == []


def test_another_organizations_accounts_and_notices_are_404(api, other_api, clock, smtp):
    account = make_account(api.organization)
    emit_invoice_created(make_invoice(account))
    drain()
    notice = Notice.objects.get(channel="in_app")
    theirs = make_account(other_api.organization, email="globex@example.com")
    base = f"/v1/billing_accounts/{account.public_id}"
    for response in (other_api.get(f"{base}/notifications"), other_api.post(f"{base}/notifications/read_all"),
                     other_api.post(f"{base}/notifications/{notice.public_id}/read"),
                     other_api.get(f"{base}/notification_preferences"),
                     other_api.patch(f"{base}/notification_preferences", {"preferences": []}),
                     other_api.post(f"/v1/billing_accounts/{theirs.public_id}/notifications/{notice.public_id}/read")):
        assert response.status_code == 404, response.content
    notice.refresh_from_db()
    assert notice.read_at is None
