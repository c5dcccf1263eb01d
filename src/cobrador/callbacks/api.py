from django.db import transaction
from django.shortcuts import get_object_or_404
from django.views.decorators.csrf import csrf_exempt
from ninja import Router, Status

from cobrador.callbacks import receiving
from cobrador.callbacks.errors import (
    CallbackBodyInvalid,
    CallbackNotReprocessable,
    CallbackSignatureInvalid,
    CallbackUrlUnknown,
)
from cobrador.callbacks.models import GatewayCallback
from cobrador.callbacks.schemas import CallbackAck, CallbackDetailOut, CallbackPage, CallbackStatus
from cobrador.callbacks.services import callback_data
from cobrador.core.errors import errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit

router = Router(tags=["gateway callbacks"])
register_path_id("callback_id", GatewayCallback)


def _callbacks(request):
    return GatewayCallback.objects.filter(organization=request.auth).select_related("gateway")


@router.get("/callbacks", response=CallbackPage, summary="List received gateway callbacks")
def list_callbacks(request, status: CallbackStatus | None = None, provider: str | None = None,
                   event_type: str | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `status`, `provider` (sandbox, pagarme, kobana), `event_type`."""
    callbacks = _callbacks(request).defer("body", "headers")
    if status:
        callbacks = callbacks.filter(status=status)
    if provider:
        callbacks = callbacks.filter(provider=provider)
    if event_type:
        callbacks = callbacks.filter(event_type=event_type)
    return paginate(callbacks, cursor=cursor, limit=limit, serialize=callback_data)


@router.get("/callbacks/{callback_id}", response=CallbackDetailOut, summary="Inspect a gateway callback")
def get_callback(request, callback_id: str):
    """With the headers (signatures redacted), the raw body, the error and the log of what changed."""
    return callback_data(get_object_or_404(_callbacks(request), public_id=callback_id), detail=True)


# Declared before the inbound route: both are POST /callbacks/<x>/<y>, and Django takes the first match.
@router.post("/callbacks/{callback_id}/reprocess",
             response={202: CallbackDetailOut, **errors(CallbackNotReprocessable)},
             summary="Process a gateway callback again")
def reprocess_callback(request, callback_id: str):
    """Queues the callback to be processed again (any status but rejected: a callback whose signature
    or body was bad is never processed). Processing is idempotent: a payment never moves backwards."""
    with transaction.atomic():
        callback = get_object_or_404(_callbacks(request).select_for_update(of=("self",)), public_id=callback_id)
        if callback.status == "rejected":
            raise CallbackNotReprocessable("a rejected callback (bad signature or body) cannot be processed",
                                           field="status")
        receiving.reprocess(callback)
    return Status(202, callback_data(callback, detail=True))


@router.post("/callbacks/{provider}/{token}", auth=None,
             response={200: CallbackAck, **errors(CallbackSignatureInvalid, CallbackBodyInvalid, CallbackUrlUnknown)},
             summary="Receive a payment provider's callback (no API key: signed by the provider)")
@csrf_exempt
def receive_callback(request, provider: str, token: str):
    """The URL a gateway configuration gives its provider (`provider` is sandbox, pagarme or kobana;
    `token` names the configuration). Signatures: Kobana `X-Kobana-Signature` (HMAC-SHA256), Pagar.me
    `X-Webhook-Asymmetric-Signature` (RS256, JWKS), sandbox `X-Sandbox-Signature`. Every request is stored
    raw before the answer: 401 for a bad signature and 400 for a body that is not JSON (both stored as
    rejected, nothing else happens); 200 otherwise, also for a duplicate (same provider and event id),
    which changes nothing. Processing happens asynchronously."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    callback = receiving.receive_callback(provider=provider, token=token, headers=headers, body=request.body)
    return Status(200, {"id": callback.public_id, "status": callback.status,
                        "duplicate": getattr(callback, "duplicate", False)})
