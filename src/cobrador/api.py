"""The `/v1` API object: authentication, the one error shape, and helpers the domain routers share."""

from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from cobrador.core.errors import ApiError, error_body
from cobrador.organizations.auth import ApiKeyAuth

API_DESCRIPTION = """
cobrador's REST API. Authenticate with an organization's secret key:
`Authorization: Bearer sk_test_...` (test mode) or `sk_live_...` (live mode).

* Every id is a prefixed public id; an id of another organization answers 404.
* Writes accept an `Idempotency-Key` header: the same key and body replays the stored response
  for 24 h (header `Idempotent-Replayed: true`); the same key with another body is a 422; while the
  key's first request is still running, a 409 (a request unanswered after 10 minutes was lost, and
  the next one with the key runs).
* Lists are cursor-paginated: `?limit=` (1-100) and `?cursor=` from `next_cursor`.
* Every error has the shape `{"error": {"type", "message", "field", "errors": [{"field", "message"}]}}`;
  `field` names the input at fault.
"""


def _field_of(loc: list) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts and parts[0] in {"query", "path", "header", "cookie"}:
        parts = parts[1:]
    return ".".join(parts) or "body"


def _message_of(error: dict) -> str:
    kind = error.get("type", "")
    if kind == "extra_forbidden":
        return "unknown field"
    if kind == "missing":
        return "field required"
    return error.get("msg", "invalid value")


api = NinjaAPI(
    title="cobrador",
    version="1",
    description=API_DESCRIPTION,
    auth=ApiKeyAuth(),
    urls_namespace="v1",
)


@api.exception_handler(ApiError)
def _api_error(request, exc: ApiError):
    return api.create_response(request, exc.body(), status=exc.status)


@api.exception_handler(ValidationError)
def _validation_error(request, exc: ValidationError):
    errors = [{"field": _field_of(e.get("loc", [])), "message": _message_of(e)} for e in exc.errors]
    first = errors[0] if errors else {"field": None, "message": "invalid request"}
    body = error_body(422, "validation_error", f"{first['field']}: {first['message']}",
                      field=first["field"], errors=errors)
    return api.create_response(request, body, status=422)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    return api.create_response(request, error_body(401, "unauthorized", "invalid, revoked or missing API key"),
                               status=401)


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    kind = "invalid_json" if exc.status_code == 400 else "invalid_request"
    message = "request body is not valid JSON" if exc.status_code == 400 else str(exc)
    return api.create_response(request, error_body(exc.status_code, kind, message, field="body" if
                                                   exc.status_code == 400 else None), status=exc.status_code)


@api.exception_handler(Http404)
def _not_found(request, exc):
    return api.create_response(request, error_body(404, "not_found", "no such object"), status=404)
