import io
import json
import logging
from datetime import timedelta

import pytest
from django.test import Client

from cobrador.core.logs import ClientErrorsAtInfo, ContextFilter, JsonFormatter, PlainFormatter, logging_setting
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job
from tests.factories import make_org
from tests.processes import run, worker_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def log_lines():
    """What the root logger writes through cobrador's JSON formatter, as parsed lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def test_a_clients_4xx_is_logged_at_info_with_the_request_id_and_organization(log_lines):
    api = make_org()

    response = api.get("/v1/billing_accounts/ba_doesnotexist")

    assert response.status_code == 404
    [line] = [entry for entry in log_lines() if entry["logger"] == "django.request"]
    assert line["level"] == "INFO"
    assert line["message"] == "Not Found: /v1/billing_accounts/ba_doesnotexist"
    assert line["request_id"] == response["X-Request-ID"]
    assert line["organization"] == api.organization.public_id
    assert set(line) >= {"time", "level", "logger", "message"}


def test_a_probe_404_is_not_a_warning(log_lines):
    Client().get("/no-such-probe")

    assert [entry["level"] for entry in log_lines() if entry["logger"] == "django.request"] == ["INFO"]


def test_a_request_id_sent_by_a_proxy_is_kept_and_a_malformed_one_replaced():
    assert Client().get("/healthz", headers={"X-Request-ID": "lb-1234.abc"})["X-Request-ID"] == "lb-1234.abc"
    replaced = Client().get("/healthz", headers={"X-Request-ID": "two words\n"})["X-Request-ID"]
    assert len(replaced) == 32 and replaced.isalnum()


def test_every_job_run_logs_its_start_and_end_with_counts_and_its_context(log_lines):
    run = run_job("retention-cleanup", trigger="cli")

    lines = [entry for entry in log_lines() if entry["logger"] == "cobrador.jobs.runner"]
    assert [entry["level"] for entry in lines] == ["INFO", "INFO"]
    assert lines[0]["message"].startswith("job retention-cleanup started as of ")
    assert lines[1]["message"].startswith("job retention-cleanup succeeded in ")
    assert "0 done, 0 failed, 0 skipped" in lines[1]["message"]
    assert {(entry["job"], entry["run_id"]) for entry in lines} == {("retention-cleanup", run.pk)}
    assert "request_id" not in lines[0]


def test_a_5xx_stays_an_error():
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (), None)
    record.status_code = 500
    assert ClientErrorsAtInfo().filter(record) and record.levelname == "ERROR"


def test_plain_text_appends_the_known_context_to_the_first_line():
    record = logging.LogRecord("cobrador.x", logging.INFO, __file__, 1, "hello", (), None)
    record.job, record.run_id, record.request_id, record.organization = "payment-retry", 7, None, None

    assert PlainFormatter().format(record).endswith("INFO cobrador.x hello [job=payment-retry run_id=7]")


def test_an_unknown_log_format_is_refused_with_its_name():
    with pytest.raises(ValueError, match="COBRADOR_LOG_FORMAT must be 'text' or 'json', not 'xml'"):
        logging_setting(log_format="xml", level="INFO", ox_level="WARNING")


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
def test_a_command_logs_one_json_object_a_line():
    result = run("jobs", "run", "retention-cleanup", env=worker_env(COBRADOR_LOG_FORMAT="json"))

    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    ends = [line for line in lines if line["message"].startswith("job retention-cleanup succeeded")]
    assert len(ends) == 1 and ends[0]["job"] == "retention-cleanup" and ends[0]["level"] == "INFO"


def test_a_not_ready_answer_logs_its_reasons_once_at_warning(log_lines, clock):
    for name in JOBS:  # every job ran just now, but webhook-delivery (every minute) not for 10 minutes
        at = clock.now() - timedelta(minutes=10 if name == "webhook-delivery" else 0)
        JobRun.objects.create(job_name=name, as_of=at, started_at=at, finished_at=at, status="succeeded")

    assert Client().get("/readyz").status_code == 503

    levels = {(entry["logger"], entry["level"]) for entry in log_lines()}
    assert ("cobrador.ops.probes", "WARNING") in levels
    assert ("django.request", "INFO") in levels
    assert not any(entry["level"] == "ERROR" for entry in log_lines())
