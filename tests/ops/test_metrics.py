from datetime import timedelta

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from cobrador.callbacks.models import GatewayCallback
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.jobs.tasks import run_scheduled_job
from cobrador.webhooks.models import WebhookDelivery
from tests.factories import make_org
from tests.webhooks.conftest import emit, register

pytestmark = pytest.mark.django_db


def scrape(client: Client | None = None, **headers) -> dict:
    """/metrics as {(name, labels as sorted tuple): value}."""
    response = (client or Client()).get("/metrics", headers=headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_answer_loopback_clients_when_no_token_is_set():
    assert Client(REMOTE_ADDR="127.0.0.1").get("/metrics").status_code == 200
    assert Client(REMOTE_ADDR="::1").get("/metrics").status_code == 200

    response = Client(REMOTE_ADDR="203.0.113.7").get("/metrics")

    assert response.status_code == 403
    assert response.json()["error"]["type"] == "forbidden"


def test_metrics_need_the_token_when_one_is_set(settings):
    settings.METRICS_TOKEN = "s3cret-metrics-token"
    remote = Client(REMOTE_ADDR="203.0.113.7")

    assert remote.get("/metrics").status_code == 401
    assert Client().get("/metrics").status_code == 401  # loopback too: the token decides
    wrong = remote.get("/metrics", headers={"Authorization": "Bearer not-it"})
    assert wrong.status_code == 401
    assert wrong["WWW-Authenticate"] == "Bearer"
    assert remote.get("/metrics", headers={"Authorization": "Bearer s3cret-metrics-token"}).status_code == 200


def test_job_figures_come_from_the_runs_of_the_last_day(clock):
    now = clock.now()
    for started, status, done, failed in [(now - timedelta(minutes=30), "succeeded", 5, 0),
                                          (now - timedelta(minutes=20), "partial", 3, 1),
                                          (now - timedelta(minutes=10), "failed", 0, 0),
                                          (now - timedelta(days=2), "succeeded", 100, 0)]:
        JobRun.objects.create(job_name="invoice-generation", as_of=started, started_at=started,
                              finished_at=started + timedelta(seconds=4), status=status, items_done=done,
                              items_failed=failed)
    FailedItem.objects.create(job_name="invoice-generation", item_key="sub_1", attempts=3, last_error="boom",
                              first_failed_at=now, last_failed_at=now, parked=True)

    samples = scrape()

    job = (("job", "invoice-generation"),)
    assert samples[("cobrador_job_runs_24h", (("job", "invoice-generation"), ("status", "succeeded")))] == 1
    assert samples[("cobrador_job_runs_24h", (("job", "invoice-generation"), ("status", "partial")))] == 1
    assert samples[("cobrador_job_failed_runs_24h", job)] == 1
    assert samples[("cobrador_job_items_done_24h", job)] == 8
    assert samples[("cobrador_job_items_failed_24h", job)] == 1
    assert samples[("cobrador_job_parked_items", job)] == 1
    assert samples[("cobrador_job_last_run_duration_seconds", job)] == 4
    # The last success is the partial run of 20 minutes ago, which ended 4 seconds later.
    assert samples[("cobrador_job_seconds_since_last_success", job)] == 20 * 60 - 4
    assert samples[("cobrador_job_last_success_timestamp_seconds", job)] == (
        now - timedelta(minutes=20) + timedelta(seconds=4)).timestamp()
    assert ("cobrador_job_seconds_since_last_success", (("job", "card-expiring"),)) not in samples


def test_outbox_callback_and_queue_backlogs(clock):
    api = make_org()
    register(api, "http://127.0.0.1:9/hook")
    emit(api.organization)
    clock.advance(timedelta(minutes=3))
    second = emit(api.organization)
    WebhookDelivery.objects.filter(event=second).update(status="pending", attempt_count=1, last_status_code=503)
    GatewayCallback.objects.create(provider="kobana", event_id="evt_1", body=b"{}", status="received",
                                   received_at=clock.now() - timedelta(seconds=90))
    GatewayCallback.objects.create(provider="kobana", event_id="evt_2", body=b"{}", status="failed",
                                   next_attempt_at=clock.now(), received_at=clock.now())
    GatewayCallback.objects.create(provider="kobana", event_id="evt_3", body=b"{}", status="processed",
                                   received_at=clock.now() - timedelta(days=1))
    run_scheduled_job.enqueue(name="callback-retry")

    samples = scrape()

    assert samples[("cobrador_outbox_pending", (("outbox", "webhooks"),))] == 2
    assert samples[("cobrador_outbox_oldest_pending_age_seconds", (("outbox", "webhooks"),))] == 180
    assert samples[("cobrador_outbox_pending", (("outbox", "notices"),))] == 0
    assert samples[("cobrador_outbox_pending", (("outbox", "charges"),))] == 0
    assert samples[("cobrador_webhook_deliveries", (("outcome", "retrying"), ("status_class", "5xx")))] == 1
    assert samples[("cobrador_callback_backlog", (("status", "received"),))] == 1
    assert samples[("cobrador_callback_backlog", (("status", "failed"),))] == 1
    assert samples[("cobrador_callback_backlog", (("status", "processing"),))] == 0
    assert samples[("cobrador_callback_backlog_oldest_age_seconds", ())] == 90
    assert samples[("cobrador_task_queue", (("state", "ready"),))] >= 1


def test_answers_are_counted_by_status_class():
    client = Client()
    before = scrape(client).get(("cobrador_http_responses_total", (("status_class", "4xx"),)), 0)

    client.get("/v1/no-such-thing")
    client.get("/v1/no-such-thing")

    assert scrape(client)[("cobrador_http_responses_total", (("status_class", "4xx"),))] == before + 2
