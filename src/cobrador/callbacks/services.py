"""What the API and admin show of stored callbacks."""

from cobrador.callbacks.models import GatewayCallback

# Never shown back: signatures and anything that could authenticate.
REDACTED_HEADERS = {"authorization", "cookie", "x-kobana-signature", "x-webhook-asymmetric-signature",
                    "x-sandbox-signature", "x-hub-signature", "x-boletosimples-signature", "webhook-signature"}


def redacted_headers(headers: dict) -> dict[str, str]:
    return {name: ("[redacted]" if name.lower() in REDACTED_HEADERS else str(value))
            for name, value in (headers or {}).items()}


def callback_data(callback: GatewayCallback, *, detail: bool = False) -> dict:
    data = {
        "id": callback.public_id,
        "object": "gateway_callback",
        "provider": callback.provider,
        "gateway": callback.gateway.public_id if callback.gateway_id else None,
        "event_id": callback.event_id or None,
        "event_type": callback.event_type or None,
        "status": callback.status,
        "attempts": callback.attempts,
        "next_attempt_at": callback.next_attempt_at if callback.status in ("failed", "processing") else None,
        "error": callback.error or None,
        "changes": callback.changes or [],
        "received_at": callback.received_at,
        "processed_at": callback.processed_at,
    }
    if detail:
        data["headers"] = redacted_headers(callback.headers)
        data["body"] = bytes(callback.body).decode("utf-8", errors="replace")
    return data
