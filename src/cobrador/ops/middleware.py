import re
import time
import uuid

from django.core.signals import request_finished

from cobrador.core import logs
from cobrador.ops.metrics import http_request_duration, http_responses
from cobrador.ops.queries import status_class

# A request id a proxy or client sent is kept (so its logs and ours match) if it looks like one.
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


request_finished.connect(logs.end_request, dispatch_uid="cobrador.ops.end_request_log_context")


class RequestContextMiddleware:
    """Gives each request an id (X-Request-ID, echoed in the answer) that its log lines carry, and
    counts the answer for /metrics."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        sent = request.headers.get("X-Request-ID", "")
        request_id = sent if _REQUEST_ID.fullmatch(sent) else uuid.uuid4().hex
        started = time.perf_counter()
        logs.start_request(request_id)
        response = self.get_response(request)
        http_request_duration.observe(time.perf_counter() - started)
        http_responses.labels(status_class(response.status_code)).inc()
        response["X-Request-ID"] = request_id
        return response
