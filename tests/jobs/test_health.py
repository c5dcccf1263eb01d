"""Nothing silent: job health from each job's cron and runs, and one e-mail per incident and one when
it recovers, to COBRADOR_OPS_EMAIL through the real SMTP fake."""

import socket
from datetime import UTC, datetime, timedelta

import pytest

from cobrador.core import clock as clock_module
from cobrador.jobs import catalog
from cobrador.jobs.catalog import JobSpec
from cobrador.jobs.health import cron_period, job_health
from cobrador.jobs.models import JobRun, JobState, OpsAlert
from cobrador.jobs.runner import run_job
from tests.notifications.conftest import smtp  # noqa: F401 - the real SMTP fake as the default mailer

JOB = "test-hourly"
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def nothing_sweep(run) -> None:
    pass


@pytest.fixture(autouse=True)
def hourly_job(monkeypatch):
    monkeypatch.setitem(catalog.JOBS, JOB, JobSpec(JOB, "0 * * * *", f"{__name__}.nothing_sweep", "test"))


def health_of(name: str, as_of: datetime):
    return next(h for h in job_health(as_of) if h.name == name)


def test_the_expected_period_comes_from_the_cron():
    assert cron_period("* * * * *", T0) == timedelta(minutes=1)
    assert cron_period("0 */6 * * *", T0) == timedelta(hours=6)
    assert cron_period("0 10 * * 1", T0) == timedelta(days=7)
    assert cron_period("45 0 1 * *", T0) == timedelta(days=28)  # February, at March 1


@pytest.mark.django_db
def test_a_job_is_never_then_ok_then_late_after_two_periods(clock):
    clock.set(T0)
    assert health_of(JOB, T0).state == "never"
    run_job(JOB)  # an empty check counts as a success
    assert health_of(JOB, T0 + timedelta(minutes=30)).state == "ok"
    # Two hourly periods and the slack (5 minutes) without a success: late.
    assert health_of(JOB, T0 + timedelta(hours=2, minutes=5)).state == "ok"
    late = health_of(JOB, T0 + timedelta(hours=2, minutes=6))
    assert late.state == "late" and "since 2026-03-01 12:00" in late.reason and "every 1 hour" in late.reason


@pytest.mark.django_db
def test_a_job_switched_off_is_off_not_late(clock, monkeypatch):
    monkeypatch.setenv("COBRADOR_CRON_TEST_HOURLY", "off")
    assert health_of(JOB, T0 + timedelta(days=3)).state == "off"


@pytest.mark.django_db
def test_a_live_run_far_past_its_usual_time_is_stuck(clock):
    clock.set(T0)
    JobState.objects.create(job_name=JOB, last_success_at=T0, typical_seconds=30, updated_at=T0)
    JobRun.objects.create(job_name=JOB, as_of=T0, started_at=T0, heartbeat_at=clock_module.wall_now())
    # Usually 30 s: stuck after max(10 x 30 s, 15 minutes).
    assert health_of(JOB, T0 + timedelta(minutes=14)).state == "ok"
    stuck = health_of(JOB, T0 + timedelta(minutes=16))
    assert stuck.state == "stuck" and stuck.running_since == T0 and "usually 30 s" in stuck.reason


@pytest.mark.django_db
def test_stopping_a_jobs_schedule_makes_it_late_and_sends_one_email_then_one_on_recovery(clock, smtp, settings):  # noqa: F811 - the fixture
    settings.OPS_EMAIL = ["ops@example.com"]
    clock.set(T0)
    run_job(JOB)
    # The schedule stops: no tick of test-hourly for a day, while job-watch keeps checking every 5 minutes.
    at = T0
    while at < T0 + timedelta(hours=6):
        at += timedelta(minutes=5)
        clock.set(at)
        run_job("job-watch")
    assert health_of(JOB, at).state == "late"
    alerts = list(OpsAlert.objects.filter(job_name=JOB).values_list("kind", "incident_started_at"))
    assert alerts == [("late", T0 + timedelta(hours=2, minutes=10))]
    mails = smtp.wait_for(1)
    assert [m.message["Subject"] for m in mails] == [f"[cobrador] {JOB} is late"]
    assert mails[0].message["To"] == "ops@example.com" and "2026-03-01 12:00" in mails[0].message.get_content()
    # The job-watch runs that only checked left no JobRun rows; the ones that alerted did.
    assert list(JobRun.objects.filter(job_name="job-watch").values_list("counts", flat=True)) == [
        {"opened": 1, "recovered": 0, "alerts_sent": 1}]

    run_job(JOB)  # the schedule is back
    clock.set(at + timedelta(minutes=5))
    run_job("job-watch")
    run_job("job-watch")
    assert health_of(JOB, clock.now()).state == "ok"
    assert [m.message["Subject"] for m in smtp.wait_for(2)] == [f"[cobrador] {JOB} is late",
                                                                f"[cobrador] {JOB} recovered"]
    assert JobState.objects.get(job_name=JOB).incident_state == ""
    assert OpsAlert.objects.filter(sent_at__isnull=True).count() == 0


@pytest.mark.django_db
def test_an_alert_the_mail_server_refused_is_sent_by_the_next_check(clock, smtp, settings):  # noqa: F811
    settings.OPS_EMAIL = ["ops@example.com"]
    working = settings.MAILERS
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    settings.MAILERS = {"default": {"BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                                    "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5}}}
    clock.set(T0)
    run_job(JOB)
    clock.set(T0 + timedelta(hours=3))
    run_job("job-watch")
    alert = OpsAlert.objects.get()
    assert alert.sent_at is None and alert.attempts == 1 and "refused" in alert.last_error.lower()

    settings.MAILERS = working
    clock.set(T0 + timedelta(hours=3, minutes=5))
    run_job("job-watch")
    assert OpsAlert.objects.get().sent_at == clock.now()
    assert len(smtp.wait_for(1)) == 1
