"""The operations console for webhooks: endpoints, deliveries with their attempts, replay."""


from cobrador.webhooks.delivery import deliver_due
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint
from tests.webhooks.conftest import emit, endpoint_row


def _form(row, **changes):
    data = {"url": row.url, "description": row.description, "enabled_events": '["*"]', "status": row.status}
    data.update(changes)
    return data


def test_pages_load_and_never_show_the_secret(admin_client, api, hook):
    emit(api.organization)
    deliver_due()
    row = endpoint_row(hook)
    delivery = WebhookDelivery.objects.get()
    for url in ("/admin/webhooks/webhookendpoint/", f"/admin/webhooks/webhookendpoint/{row.pk}/change/",
                "/admin/webhooks/webhookdelivery/", f"/admin/webhooks/webhookdelivery/{delivery.pk}/change/",
                "/admin/webhooks/webhookendpoint/?q=" + hook["id"]):
        response = admin_client.get(url)
        assert response.status_code == 200, url
        page = response.content.decode()
        assert hook["secret"] not in page and hook["secret"].removeprefix("whsec_") not in page
    assert delivery.public_id in admin_client.get("/admin/webhooks/webhookdelivery/").content.decode()


def test_endpoints_cannot_be_added_in_the_admin(admin_client):
    assert admin_client.get("/admin/webhooks/webhookendpoint/add/").status_code == 403


def test_the_admin_applies_the_ssrf_guard(admin_client, api, hook, settings):
    settings.WEBHOOK_ALLOW_PRIVATE = False
    row = endpoint_row(hook)
    response = admin_client.post(f"/admin/webhooks/webhookendpoint/{row.pk}/change/",
                        _form(row, url="http://169.254.169.254/latest/meta-data/"))
    assert response.status_code == 200  # the form again, with the error
    assert "non-public address" in response.content.decode()
    assert endpoint_row(hook).url == row.url


def test_the_admin_refuses_unknown_event_types(admin_client, api, hook):
    row = endpoint_row(hook)
    response = admin_client.post(f"/admin/webhooks/webhookendpoint/{row.pk}/change/",
                        _form(row, enabled_events='["invoice.exploded"]'))
    assert response.status_code == 200
    assert endpoint_row(hook).enabled_events == ["*"]


def test_disabling_in_the_admin_records_why_and_when(admin_client, api, hook, clock):
    row = endpoint_row(hook)
    response = admin_client.post(f"/admin/webhooks/webhookendpoint/{row.pk}/change/", _form(row, status="disabled"))
    assert response.status_code == 302
    row = endpoint_row(hook)
    assert row.status == "disabled" and row.disabled_at == clock.now() and row.disabled_reason
    assert row.secret == hook["secret"]
    response = admin_client.post(f"/admin/webhooks/webhookendpoint/{row.pk}/change/", _form(row, status="enabled"))
    assert response.status_code == 302
    row = endpoint_row(hook)
    assert (row.status, row.disabled_at, row.disabled_reason) == ("enabled", None, "")


def test_the_replay_action_resends_with_the_same_webhook_id(admin_client, api, hook, receiver):
    event = emit(api.organization)
    deliver_due()
    delivery = WebhookDelivery.objects.get()
    response = admin_client.post("/admin/webhooks/webhookdelivery/",
                                 {"action": "replay", "_selected_action": [delivery.pk]})
    assert response.status_code == 302
    assert deliver_due() == 1
    assert [r.webhook_id for r in receiver.wait_for(2)] == [event.public_id] * 2
    WebhookEndpoint.objects.update(status="disabled")
    admin_client.post("/admin/webhooks/webhookdelivery/", {"action": "replay", "_selected_action": [delivery.pk]})
    assert deliver_due() == 0
