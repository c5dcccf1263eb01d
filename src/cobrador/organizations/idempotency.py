"""`Idempotency-Key` on API writes.

The same key with the same request replays the stored response for 24 h; the same key with
another request is a 422. The key is claimed by inserting its row before the handler runs, so two
concurrent requests with one key cannot both execute: the second gets a 409 until the first ends.
A claim still unanswered after ABANDONED_AFTER was left by a process that died mid-request (its
transaction rolled back): the next request with the key takes it over and executes.
"""

import hashlib
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.http import HttpResponse, JsonResponse

from cobrador.core import clock
from cobrador.core.errors import error_body
from cobrador.core.models import IdempotencyRecord
from cobrador.jobs.retention import delete_in_batches
from cobrador.organizations.auth import organization_for_key

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
REPLAY_WINDOW = timedelta(hours=24)
# Far longer than any request runs (gateway calls time out within a minute).
ABANDONED_AFTER = timedelta(minutes=10)


def _fingerprint(request) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode() + b" " + request.get_full_path().encode() + b"\n")
    digest.update(request.body)
    return digest.hexdigest()


class IdempotencyKeyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        key = request.headers.get("Idempotency-Key")
        if (
            not key
            or request.method not in WRITE_METHODS
            or not request.path.startswith("/v1/")
            or request.path.startswith("/v1/callbacks/")
        ):
            return self.get_response(request)
        if len(key) > 255:
            return JsonResponse(
                error_body(400, "invalid_request", "Idempotency-Key is longer than 255 characters",
                           field="Idempotency-Key"), status=400)
        auth = request.headers.get("Authorization", "")
        organization = organization_for_key(auth.removeprefix("Bearer ").strip())
        if organization is None:
            return self.get_response(request)  # the API answers 401
        return self._handle(request, organization, key)

    def _handle(self, request, organization, key):
        fingerprint = _fingerprint(request)
        now = clock.now()
        IdempotencyRecord.objects.filter(organization=organization, key=key,
                                         created_at__lt=now - REPLAY_WINDOW).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    organization=organization, key=key, request_fingerprint=fingerprint, created_at=now)
        except IntegrityError:
            record = IdempotencyRecord.objects.get(organization=organization, key=key)
            if record.request_fingerprint != fingerprint:
                return JsonResponse(error_body(
                    422, "idempotency_key_reused",
                    "this Idempotency-Key was used with a different request", field="Idempotency-Key"),
                    status=422)
            if record.response_status is not None:
                response = HttpResponse(bytes(record.response_body), status=record.response_status,
                                        content_type="application/json")
                response["Idempotent-Replayed"] = "true"
                return response
            if not _take_over(record, now):
                return JsonResponse(error_body(
                    409, "idempotency_key_in_progress",
                    "a request with this Idempotency-Key is still being processed", field="Idempotency-Key"),
                    status=409)

        try:
            response = self.get_response(request)
        except BaseException:
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
            raise
        if response.status_code >= 500 or response.status_code == 409:
            # Not a final answer: let the client retry with the same key.
            IdempotencyRecord.objects.filter(pk=record.pk).delete()
        else:
            IdempotencyRecord.objects.filter(pk=record.pk).update(
                response_status=response.status_code, response_body=response.content)
        return response


def _take_over(record, now) -> bool:
    """Claim an abandoned key for this request; False while its first request may still be running
    (or when another request took it over first)."""
    if record.created_at > now - ABANDONED_AFTER:
        return False
    return IdempotencyRecord.objects.filter(pk=record.pk, response_status__isnull=True,
                                            created_at=record.created_at).update(created_at=now) == 1


def prune_idempotency_keys(as_of) -> int:
    """retention-cleanup: keys past their replay window answer nothing any more."""
    return delete_in_batches(IdempotencyRecord.objects.filter(created_at__lt=as_of - REPLAY_WINDOW))
