from django.db import transaction
from django.db.models import Prefetch
from django.shortcuts import get_object_or_404
from ninja import Router, Status

from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.webhooks import services
from cobrador.webhooks.errors import WebhookEndpointDisabled
from cobrador.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from cobrador.webhooks.schemas import (
    WebhookDeliveryOut,
    WebhookDeliveryPage,
    WebhookEndpointCreate,
    WebhookEndpointOut,
    WebhookEndpointPage,
    WebhookEndpointUpdate,
)

router = Router(tags=["webhooks"])
register_path_id("endpoint_id", WebhookEndpoint)
register_path_id("delivery_id", WebhookDelivery)


def _endpoint(request, endpoint_id: str) -> WebhookEndpoint:
    return get_object_or_404(WebhookEndpoint, organization=request.auth, public_id=endpoint_id)


def delivery_data(delivery: WebhookDelivery) -> dict:
    return {
        "id": delivery.public_id,
        "event_id": delivery.event.public_id,
        "event_type": delivery.event.type,
        "endpoint_id": delivery.endpoint.public_id,
        "status": delivery.status,
        "attempt_count": delivery.attempt_count,
        "next_attempt_at": delivery.next_attempt_at if delivery.status == "pending" else None,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "finished_at": delivery.finished_at,
        "attempts": [
            {"number": a.number, "attempted_at": a.attempted_at, "status_code": a.status_code,
             "duration_ms": a.duration_ms, "response_body": a.response_body, "error": a.error,
             "succeeded": a.succeeded}
            for a in delivery.attempts.all()
        ],
    }


@router.post("/webhook_endpoints", response={201: WebhookEndpointOut}, summary="Register a webhook endpoint")
def create_webhook_endpoint(request, payload: WebhookEndpointCreate):
    """The answer carries the `whsec_` signing secret; it is shown again only by rotate_secret."""
    with transaction.atomic():
        endpoint = services.create_endpoint(organization=request.auth, **payload.model_dump())
    return Status(201, services.endpoint_data(endpoint, with_secret=True))


@router.get("/webhook_endpoints", response=WebhookEndpointPage, summary="List webhook endpoints")
def list_webhook_endpoints(request, limit: Limit = 20, cursor: str | None = None):
    return paginate(WebhookEndpoint.objects.filter(organization=request.auth), cursor=cursor, limit=limit,
                    serialize=services.endpoint_data)


@router.get("/webhook_endpoints/{endpoint_id}", response=WebhookEndpointOut, summary="Retrieve a webhook endpoint")
def get_webhook_endpoint(request, endpoint_id: str):
    return services.endpoint_data(_endpoint(request, endpoint_id))


@router.patch("/webhook_endpoints/{endpoint_id}", response=WebhookEndpointOut, summary="Update a webhook endpoint")
def update_webhook_endpoint(request, endpoint_id: str, payload: WebhookEndpointUpdate):
    with transaction.atomic():
        endpoint = services.update_endpoint(endpoint=_endpoint(request, endpoint_id),
                                            changes=payload.model_dump(exclude_unset=True))
    return services.endpoint_data(endpoint)


@router.delete("/webhook_endpoints/{endpoint_id}", response={204: None}, summary="Delete a webhook endpoint")
def delete_webhook_endpoint(request, endpoint_id: str):
    _endpoint(request, endpoint_id).delete()
    return Status(204, None)


@router.post("/webhook_endpoints/{endpoint_id}/rotate_secret", response=WebhookEndpointOut,
             summary="Rotate the signing secret")
def rotate_webhook_secret(request, endpoint_id: str):
    """A new secret signs from now on; the old one keeps signing beside it for 24 hours."""
    with transaction.atomic():
        endpoint = services.rotate_secret(endpoint=_endpoint(request, endpoint_id))
    return services.endpoint_data(endpoint, with_secret=True)


@router.post("/webhook_endpoints/{endpoint_id}/test",
             response={202: WebhookDeliveryOut, **errors(WebhookEndpointDisabled)},
             summary="Send a test ping event")
def send_webhook_test(request, endpoint_id: str):
    with transaction.atomic():
        delivery = services.send_test_ping(endpoint=_endpoint(request, endpoint_id))
    return Status(202, delivery_data(delivery))


@router.get("/webhook_endpoints/{endpoint_id}/deliveries", response=WebhookDeliveryPage,
            summary="List an endpoint's deliveries with every attempt")
def list_webhook_deliveries(request, endpoint_id: str, status: str | None = None, limit: Limit = 20,
                            cursor: str | None = None):
    deliveries = (WebhookDelivery.objects.filter(endpoint=_endpoint(request, endpoint_id))
                  .select_related("event", "endpoint")
                  .prefetch_related(Prefetch("attempts", queryset=WebhookAttempt.objects.order_by("number"))))
    if status:
        deliveries = deliveries.filter(status=status)
    return paginate(deliveries, cursor=cursor, limit=limit, serialize=delivery_data)


@router.post("/webhook_deliveries/{delivery_id}/replay",
             response={202: WebhookDeliveryOut, **errors(WebhookEndpointDisabled)},
             summary="Send a delivery again (same webhook-id)")
def replay_webhook_delivery(request, delivery_id: str):
    with transaction.atomic():
        delivery = get_object_or_404(WebhookDelivery.objects.select_related("event", "endpoint"),
                                     organization=request.auth, public_id=delivery_id)
        services.replay_delivery(delivery=delivery)
    return Status(202, delivery_data(delivery))
