"""A deadline for a whole webhook request, not just for each read.

httpx's timeouts apply to each socket operation: a receiver that sends its status line or body a byte
at a time, each just within the read timeout, could hold a send for hours, past the delivery's lease,
and another worker would then send the same delivery again. The webhook client's connections are
made by DeadlineBackend; their every read, write and TLS handshake waits at most until the deadline
set by `within()` in the calling thread, and fails with a timeout once it has passed. Pooled
connections keep their stream, so a reused connection obeys the current request's deadline too.
"""

import threading
import time
from contextlib import contextmanager

import httpcore
import httpx

_local = threading.local()


@contextmanager
def within(seconds: float):
    """Every socket operation of this thread's requests inside the block ends by `seconds` from now."""
    previous = getattr(_local, "deadline", None)
    _local.deadline = time.monotonic() + seconds
    try:
        yield
    finally:
        _local.deadline = previous


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    deadline = getattr(_local, "deadline", None)
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise error("the request's deadline has passed")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream):
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(self, ssl_context, server_hostname=None, timeout=None):
        return _DeadlineStream(self._stream.start_tls(ssl_context, server_hostname,
                                                      _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str):
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.SyncBackend):
    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        return _DeadlineStream(super().connect_tcp(host, port, _bounded(timeout, httpcore.ConnectTimeout),
                                                   local_address, socket_options))


def client(**kwargs):
    """An httpx.Client whose connections are made by DeadlineBackend. httpx takes no network backend,
    so it is set on its connection pool (checked here, so an httpx that changes this fails loudly; httpx
    is bounded in pyproject.toml and tests/webhooks/test_deadline.py checks the attribute)."""
    transport = httpx.HTTPTransport(limits=kwargs.pop("limits", httpx.Limits()))
    pool = transport._pool  # noqa: SLF001 - httpx offers no public way to pass a network backend
    if not isinstance(getattr(pool, "_network_backend", None), httpcore.SyncBackend):
        raise RuntimeError("httpx's connection pool no longer has a replaceable network backend")
    pool._network_backend = DeadlineBackend()  # noqa: SLF001
    return httpx.Client(transport=transport, **kwargs)
