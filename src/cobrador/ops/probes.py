"""/healthz, /readyz and /metrics (outside /v1: no API key)."""

import functools
import ipaddress
import logging

from django.conf import settings
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor
from django.http import HttpResponse, JsonResponse
from prometheus_client import CONTENT_TYPE_LATEST

from cobrador.core import clock, crypto
from cobrador.core.errors import error_body
from cobrador.core.models import EncryptionCanary
from cobrador.core.startup import CANARY_TEXT
from cobrador.jobs.health import job_health
from cobrador.ops.metrics import exposition

logger = logging.getLogger(__name__)

# Once every migration this code knows is applied, it stays so for the life of the process.
_migrations_applied = False


def _first_line(exc: Exception) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _get_only(view):
    @functools.wraps(view)
    def wrapper(request):
        if request.method not in ("GET", "HEAD"):
            response = JsonResponse(error_body(405, "method_not_allowed", f"{request.path} answers GET only"),
                                    status=405)
            response["Allow"] = "GET, HEAD"
            return response
        return view(request)
    return wrapper


@_get_only
def healthz(request):
    """The process is alive and answers; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _check_migrations() -> str | None:
    global _migrations_applied
    if _migrations_applied:
        return None
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    if plan:
        names = ", ".join(f"{migration.app_label}.{migration.name}" for migration, _ in plan[:5])
        more = f" and {len(plan) - 5} more" if len(plan) > 5 else ""
        return f"migrations not applied: {names}{more}; run `cobrador manage migrate`"
    _migrations_applied = True
    return None


def _check_encryption_key() -> str | None:
    canary = EncryptionCanary.objects.first()
    if canary is None:  # written by the first process that starts; nothing is encrypted before it
        return None
    try:
        if crypto.decrypt(canary.token) == CANARY_TEXT:
            return None
    except crypto.EncryptionKeyMismatch:
        pass
    return ("the database holds values encrypted with another encryption key; set COBRADOR_ENCRYPTION_KEY "
            "to the key it was created with")


def _check_schedules() -> str | None:
    """The same verdict as `cobrador jobs list`, the console and the job-watch e-mails."""
    trouble = [h for h in job_health(clock.now()) if h.in_trouble]
    return "; ".join(f"job {h.name} ({h.cron}) is {h.state}: {h.reason}" for h in trouble) or None


@_get_only
def readyz(request):
    """Ready to serve: the database answers, is migrated, opens with our key, and the schedules run."""
    checks: dict[str, str] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        checks["database"] = f"unreachable: {_first_line(exc)}"
    else:
        checks["database"] = "ok"
        for name, check in [("migrations", _check_migrations), ("encryption_key", _check_encryption_key),
                            ("schedules", _check_schedules)]:
            try:
                checks[name] = check() or "ok"
            except DatabaseError as exc:
                checks[name] = f"could not be checked: {_first_line(exc)}"
    failing = [{"field": name, "message": result} for name, result in checks.items() if result != "ok"]
    if not failing:
        return JsonResponse({"status": "ready", "checks": checks})
    logger.warning("not ready: %s", "; ".join(f"{f['field']}: {f['message']}" for f in failing))
    body = error_body(503, "not_ready", "not ready: " + ", ".join(f["field"] for f in failing), errors=failing)
    return JsonResponse({**body, "status": "not_ready", "checks": checks}, status=503)


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False


@_get_only
def metrics(request):
    """Prometheus text format; with COBRADOR_METRICS_TOKEN set, for `Authorization: Bearer <token>` only,
    otherwise for loopback clients only."""
    if settings.METRICS_TOKEN:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not crypto.constant_time_equals(token.strip(), settings.METRICS_TOKEN):
            response = JsonResponse(error_body(401, "unauthorized", "/metrics needs the metrics token: "
                                               "Authorization: Bearer <COBRADOR_METRICS_TOKEN>"), status=401)
            response["WWW-Authenticate"] = "Bearer"
            return response
    elif not _is_loopback(request.META.get("REMOTE_ADDR", "")):
        return JsonResponse(error_body(403, "forbidden", "/metrics answers only loopback clients unless "
                                       "COBRADOR_METRICS_TOKEN is set"), status=403)
    return HttpResponse(exposition(), content_type=CONTENT_TYPE_LATEST)
