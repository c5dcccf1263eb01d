
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, output, start, stop, wait_until, worker_env


def responses_2xx(text: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cobrador_http_responses_total" and sample.labels == {"status_class": "2xx"}:
                return sample.value
    return 0


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_cobrador_web_serves_the_probes_and_sums_its_workers_counters():
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = start("web", "--port", str(port), "--workers", "2", env=worker_env(COBRADOR_LOG_FORMAT="json"))
    try:
        def healthy():
            assert web.poll() is None, output(web)
            try:
                return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(healthy, timeout=60, message=lambda: output(web))
        with httpx.Client(base_url=base, timeout=10) as client:
            before = responses_2xx(client.get("/metrics").text)
            # New connections, so granian spreads them over both worker processes.
            for _ in range(20):
                assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            after = responses_2xx(client.get("/metrics").text)
            ready = client.get("/readyz")
        # Every answer since the first scrape is counted (that scrape's too), whichever process gave it.
        assert after == before + 21
        assert ready.status_code in (200, 503) and ready.json()["checks"]["database"] == "ok"
        assert ready.json()["checks"]["migrations"] == "ok"
    finally:
        stop(web)
