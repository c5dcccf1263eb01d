"""Webhook endpoints and their deliveries. Services never commit: the API or task boundary does."""

import base64
import os
from datetime import timedelta

from django.conf import settings

from cobrador.core import clock
from cobrador.core.bulk import insert_objects
from cobrador.core.errors import ValidationFailed
from cobrador.core.outbox import wake_outbox_after_commit
from cobrador.events.models import Event
from cobrador.events.services import record_event, register_sink
from cobrador.events.types import EVENT_TYPES
from cobrador.webhooks.errors import WebhookEndpointDisabled
from cobrador.webhooks.models import WebhookDelivery, WebhookEndpoint
from cobrador.webhooks.ssrf import BlockedTarget, validate_webhook_url

ROTATION_OVERLAP = timedelta(hours=24)


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(24)).decode()


def _check_url(url: str) -> None:
    try:
        validate_webhook_url(url, allow_private=settings.WEBHOOK_ALLOW_PRIVATE)
    except BlockedTarget as exc:
        raise ValidationFailed(f"url: {exc}", field="url") from exc


def _check_events(enabled_events: list[str]) -> list[str]:
    if not enabled_events:
        raise ValidationFailed("enabled_events must name at least one event type, or '*'", field="enabled_events")
    unknown = [e for e in enabled_events if e != "*" and e not in EVENT_TYPES]
    if unknown:
        raise ValidationFailed(f"unknown event types: {', '.join(unknown)}", field="enabled_events")
    return sorted(set(enabled_events))


def endpoint_data(endpoint: WebhookEndpoint, *, with_secret: bool = False) -> dict:
    data = {
        "id": endpoint.public_id,
        "object": "webhook_endpoint",
        "url": endpoint.url,
        "description": endpoint.description,
        "enabled_events": endpoint.enabled_events,
        "status": endpoint.status,
        "disabled_reason": endpoint.disabled_reason or None,
        "disabled_at": endpoint.disabled_at,
        "created_at": endpoint.created_at,
        "updated_at": endpoint.updated_at,
    }
    if with_secret:
        data["secret"] = endpoint.secret
    return data


def create_endpoint(*, organization, url: str, enabled_events: list[str], description: str = "") -> WebhookEndpoint:
    _check_url(url)
    now = clock.now()
    return WebhookEndpoint.objects.create(
        organization=organization, url=url, enabled_events=_check_events(enabled_events), description=description,
        secret=new_secret(), created_at=now, updated_at=now)


def update_endpoint(*, endpoint: WebhookEndpoint, changes: dict) -> WebhookEndpoint:
    if "url" in changes:
        _check_url(changes["url"])
    if "enabled_events" in changes:
        changes["enabled_events"] = _check_events(changes["enabled_events"])
    if changes.get("status") == "enabled" and endpoint.status == "disabled":
        endpoint.disabled_reason, endpoint.disabled_at, endpoint.failing_since = "", None, None
    elif changes.get("status") == "disabled" and endpoint.status == "enabled":
        endpoint.disabled_reason, endpoint.disabled_at = "disabled through the API", clock.now()
    for field, value in changes.items():
        setattr(endpoint, field, value)
    endpoint.updated_at = clock.now()
    endpoint.save(update_fields=[*changes, "disabled_reason", "disabled_at", "failing_since", "updated_at"])
    return endpoint


def rotate_secret(*, endpoint: WebhookEndpoint) -> WebhookEndpoint:
    """A new secret signs from now on; the old one keeps signing beside it for 24 hours."""
    now = clock.now()
    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = now + ROTATION_OVERLAP
    endpoint.secret = new_secret()
    endpoint.updated_at = now
    endpoint.save(update_fields=["previous_secret", "previous_secret_expires_at", "secret", "updated_at"])
    return endpoint


def signing_secrets(endpoint: WebhookEndpoint) -> list[str]:
    secrets = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_expires_at and \
            endpoint.previous_secret_expires_at > clock.now():
        secrets.append(endpoint.previous_secret)
    return secrets


def _new_delivery(event: Event, endpoint: WebhookEndpoint, now) -> WebhookDelivery:
    return WebhookDelivery(organization_id=event.organization_id, event=event, endpoint=endpoint,
                           created_at=now, next_attempt_at=now)


def send_test_ping(*, endpoint: WebhookEndpoint) -> WebhookDelivery:
    if endpoint.status != "enabled":
        raise WebhookEndpointDisabled("the endpoint is disabled; enable it before sending a ping", field="status")
    event = Event.objects.create(organization=endpoint.organization, type="ping", created_at=clock.now(),
                                 data={"webhook_endpoint": endpoint.public_id, "message": "ping from cobrador"})
    delivery = _new_delivery(event, endpoint, clock.now())
    delivery.save()
    wake_outbox_after_commit()
    return delivery


def replay_delivery(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send the same event again (same webhook-id), with a fresh retry schedule."""
    if delivery.endpoint.status != "enabled":
        raise WebhookEndpointDisabled("the endpoint is disabled; enable it before replaying", field="endpoint")
    now = clock.now()
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.schedule_position = 0
    delivery.claim_token = ""
    delivery.finished_at = None
    delivery.save(update_fields=["status", "next_attempt_at", "schedule_position", "claim_token", "finished_at"])
    wake_outbox_after_commit()
    return delivery


def fan_out_to_endpoints(events: list[Event]) -> None:
    """Event sink: one delivery row per (event, subscribed endpoint), in the business transaction."""
    org_ids = {e.organization_id for e in events if e.type != "ping"}
    if not org_ids:
        return
    endpoints_by_org: dict[int, list[WebhookEndpoint]] = {}
    for endpoint in WebhookEndpoint.objects.filter(organization_id__in=org_ids, status="enabled"):
        endpoints_by_org.setdefault(endpoint.organization_id, []).append(endpoint)
    now = clock.now()
    deliveries = [
        _new_delivery(event, endpoint, now)
        for event in events
        if event.type != "ping"
        for endpoint in endpoints_by_org.get(event.organization_id, [])
        if endpoint.wants(event.type)
    ]
    insert_objects(deliveries, ignore_conflicts=True)  # one delivery per (event, endpoint), however often called
    if deliveries:
        wake_outbox_after_commit()


register_sink(fan_out_to_endpoints)


def disable_endpoint(*, endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable after repeated failure or a 410, tell the organization, and stop its pending deliveries."""
    now = clock.now()
    updated = WebhookEndpoint.objects.filter(pk=endpoint.pk, status="enabled").update(
        status="disabled", disabled_reason=reason[:300], disabled_at=now, updated_at=now)
    if not updated:
        return
    endpoint.refresh_from_db()
    WebhookDelivery.objects.filter(endpoint=endpoint, status="pending").update(
        status="failed", next_attempt_at=None, finished_at=now, last_error="endpoint disabled")
    record_event(organization=endpoint.organization, type="webhook_endpoint.disabled",
                 data={**endpoint_data(endpoint), "reason": reason})
