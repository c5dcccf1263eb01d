"""Operations: the probes (/healthz, /readyz), Prometheus metrics (/metrics) and the request context of logs.

It sits above the domain apps and only reads them."""
