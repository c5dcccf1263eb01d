"""Every answer under /v1/ is in the one JSON error shape, also the ones Django or ninja give before a
route runs: an unknown path (404), a method the path does not take (405, with its `Allow` header) and an
over-long path (414)."""

from django.http import JsonResponse

from cobrador.core.errors import error_body

API_PREFIX = "/v1/"
PAGES_FOR_PEOPLE = ("/v1/notifications/unsubscribe",)  # the unsubscribe link answers in HTML
# Longer paths are refused before routing; no id or route comes near it.
MAX_PATH_LENGTH = 2048

_KINDS = {
    400: ("invalid_request", "the request is malformed"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "this path does not take that method"),
    414: ("uri_too_long", f"the path is longer than {MAX_PATH_LENGTH} characters"),
}


def _json_error(status: int, original=None) -> JsonResponse:
    kind, message = _KINDS.get(status, ("http_error", "the request cannot be served"))
    if status == 405 and original is not None and original.has_header("Allow"):
        message = f"this path takes {original['Allow']}"
    response = JsonResponse(error_body(status, kind, message), status=status)
    if original is not None and original.has_header("Allow"):
        response["Allow"] = original["Allow"]
    return response


class JsonHttpErrorsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not request.path.startswith(API_PREFIX) or request.path.startswith(PAGES_FOR_PEOPLE):
            return self.get_response(request)
        if len(request.path) > MAX_PATH_LENGTH:
            return _json_error(414)
        response = self.get_response(request)
        if response.status_code >= 400 and not response.get("Content-Type", "").startswith("application/json"):
            return _json_error(response.status_code, response)
        return response
