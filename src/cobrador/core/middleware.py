"""HTTP-level checks of `/v1` request bodies, made before anything reads or writes.

* Size: a body over DATA_UPLOAD_MAX_MEMORY_SIZE (Django's 2.5 MB default) is a 413 in the one error
  shape, decided from Content-Length without reading it (Django would answer its HTML 400 page and log
  an ERROR). It is logged here at WARNING (an operator may need to raise the limit or find the sender).
* Chunked bodies (`Transfer-Encoding: chunked`, no Content-Length): Django reads such a body as empty.
  A server that de-chunks the input and marks its end (`wsgi.input_terminated`, as granian and gunicorn
  do) gets it read here, up to the size limit; any other server gets a 411 asking for Content-Length.
* Media type: a write with a body must send it as JSON (`application/json` or `application/*+json`);
  `text/plain` or no Content-Type is a 415, so a body is never taken for JSON it did not claim to be.
* NUL characters: a JSON string (or key) holding U+0000 is a 422 naming the field. PostgreSQL cannot
  store one and SQLite would; neither gets it.

Two kinds of POST are not JSON by their protocol, and only the size checks apply to them: provider
callbacks (`/v1/callbacks/...`, stored raw and verified by signature whatever their media type) and the
one-click unsubscribe of RFC 8058 (`/v1/notifications/unsubscribe`, form-encoded by mail programs).
"""

import io
import json
import logging

from django.conf import settings
from django.http import JsonResponse

from cobrador.core.errors import error_body

logger = logging.getLogger(__name__)

API_PREFIX = "/v1/"
NOT_JSON_PREFIXES = ("/v1/callbacks/", "/v1/notifications/unsubscribe")
BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def _error(status: int, type: str, message: str, field: str | None = None,  # noqa: A002
           errors: list[dict] | None = None) -> JsonResponse:
    return JsonResponse(error_body(status, type, message, field=field, errors=errors), status=status)


def _too_large(request, limit: int) -> JsonResponse:
    logger.warning("refused a request body over %s bytes: %s %s", limit, request.method, request.path)
    return _error(413, "request_too_large", f"the request body is larger than {limit} bytes", field="body")


def _is_json(content_type: str) -> bool:
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/")
                                                and media_type.endswith("+json"))


def nul_field(value, path: tuple = ()) -> str | None:
    """The dotted path of the first string (value or key) holding a NUL character, or None."""
    if isinstance(value, str):
        return (".".join(path) or "body") if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            if "\x00" in key:
                return ".".join((*path, key.replace("\x00", "\\u0000"))) or "body"
            found = nul_field(item, (*path, key))
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_field(item, (*path, str(index)))
            if found:
                return found
    return None


class ApiBodyChecksMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(API_PREFIX) and request.method in BODY_METHODS:
            refusal = self._check(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _check(self, request) -> JsonResponse | None:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "invalid_request", "the Content-Length header is not a number", field="body")
        if limit is not None and length > limit:
            return _too_large(request, limit)
        if not request.META.get("CONTENT_LENGTH") and "chunked" in request.headers.get("Transfer-Encoding", "").lower():
            refusal = self._read_chunked(request, limit)
            if refusal is not None:
                return refusal
        if request.path.startswith(NOT_JSON_PREFIXES):
            return None
        body = request.body
        if not body:
            return None
        if not _is_json(request.content_type or ""):
            return _error(415, "unsupported_media_type",
                          "send the request body as JSON with Content-Type: application/json", field="body")
        try:
            document = json.loads(body)
        except ValueError:
            return None  # the API answers its own "not valid JSON" error
        field = nul_field(document)
        if field is not None:
            message = "must not contain NUL (\\u0000) characters"
            return _error(422, "validation_error", f"{field}: {message}", field=field,
                          errors=[{"field": field, "message": message}])
        return None

    @staticmethod
    def _read_chunked(request, limit: int | None) -> JsonResponse | None:
        """Reads a de-chunked body the server has terminated, the way Django reads any body."""
        if not request.META.get("wsgi.input_terminated"):
            return _error(411, "length_required", "send the request body with a Content-Length header "
                          "(this server does not read chunked bodies)", field="body")
        stream = request.META["wsgi.input"]
        body = stream.read(limit + 1) if limit is not None else stream.read()
        if limit is not None and len(body) > limit:
            return _too_large(request, limit)
        request._body = body  # noqa: SLF001 - what HttpRequest.body itself caches
        request._stream = io.BytesIO(body)  # noqa: SLF001
        request.META["CONTENT_LENGTH"] = str(len(body))
        return None
