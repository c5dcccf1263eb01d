from datetime import timedelta

import pytest
from cryptography.fernet import Fernet
from django.db import connection
from django.db.backends.sqlite3.base import DatabaseWrapper as SQLiteDatabaseWrapper
from django.db.migrations.recorder import MigrationRecorder
from django.test import Client

from cobrador.core import clock as clock_module
from cobrador.core.models import EncryptionCanary
from cobrador.core.startup import check_encryption_key
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.health import job_health
from cobrador.jobs.models import JobRun
from cobrador.ops import probes

pytestmark = pytest.mark.django_db


def finished_run(name: str, at, status: str = "succeeded") -> JobRun:
    return JobRun.objects.create(job_name=name, as_of=at, started_at=at - timedelta(seconds=2), finished_at=at,
                                 status=status)


@pytest.fixture
def every_job_ran_just_now(clock):
    for name in JOBS:
        finished_run(name, clock.now())


def test_healthz_answers_without_asking_anything():
    response = Client().get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_probes_answer_get_only_with_the_error_shape():
    response = Client().post("/healthz")

    assert response.status_code == 405
    assert response.json()["error"]["type"] == "method_not_allowed"
    assert response["Allow"] == "GET, HEAD"


def test_readyz_is_ready_when_the_database_is_migrated_keyed_and_every_schedule_runs(every_job_ran_just_now):
    check_encryption_key()

    response = Client().get("/readyz")

    assert response.status_code == 200, response.content
    assert response.json() == {"status": "ready", "checks": {
        "database": "ok", "migrations": "ok", "encryption_key": "ok", "schedules": "ok"}}


def test_readyz_names_a_job_that_missed_two_scheduled_runs(clock, every_job_ran_just_now):
    # webhook-delivery fires every minute: its last run ended 10 minutes ago, five minutes' grace included.
    JobRun.objects.filter(job_name="webhook-delivery").delete()
    finished_run("webhook-delivery", clock.now() - timedelta(minutes=10))
    # payment-retry fires every 6 hours: 7 hours without a run is one missed run, not late.
    JobRun.objects.filter(job_name="payment-retry").delete()
    finished_run("payment-retry", clock.now() - timedelta(hours=7))

    response = Client().get("/readyz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["schedules"].startswith("job webhook-delivery (* * * * *) is late: no successful run since")
    assert "payment-retry" not in body["checks"]["schedules"]
    assert body["error"]["type"] == "not_ready"
    assert [e["field"] for e in body["error"]["errors"]] == ["schedules"]


def test_a_failed_run_still_shows_the_schedule_fires(clock, every_job_ran_just_now):
    JobRun.objects.filter(job_name="webhook-delivery").delete()
    finished_run("webhook-delivery", clock.now() - timedelta(seconds=30), status="failed")

    assert Client().get("/readyz").status_code == 200


def test_a_job_switched_off_is_never_late(clock, every_job_ran_just_now, monkeypatch):
    JobRun.objects.filter(job_name="webhook-delivery").delete()
    finished_run("webhook-delivery", clock.now() - timedelta(days=3))
    monkeypatch.setenv("COBRADOR_CRON_WEBHOOK_DELIVERY", "off")

    assert Client().get("/readyz").status_code == 200


def test_readyz_refuses_a_database_encrypted_with_another_key(every_job_ran_just_now):
    EncryptionCanary.objects.all().delete()
    EncryptionCanary.objects.create(token=Fernet(Fernet.generate_key()).encrypt(b"x").decode())

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert "encrypted with another encryption key" in response.json()["checks"]["encryption_key"]


def test_readyz_lists_unapplied_migrations(every_job_ran_just_now, monkeypatch):
    monkeypatch.setattr(probes, "_migrations_applied", False)
    # The latest jobs migration (a plan with the latest applied counts the app as migrated).
    latest = MigrationRecorder(connection).migration_qs.filter(app="jobs").order_by("-name").first()
    latest.delete()

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["migrations"] == (
        f"migrations not applied: jobs.{latest.name}; run `cobrador manage migrate`")



def test_readyz_says_the_database_is_unreachable(monkeypatch, tmp_path):
    # A real SQLite connection to a file in a directory that does not exist: opening it fails.
    unreachable = SQLiteDatabaseWrapper({**connection.settings_dict, "NAME": str(tmp_path / "missing" / "db.sqlite3"),
                                         "ENGINE": "django.db.backends.sqlite3", "OPTIONS": {}}, alias="unreachable")
    monkeypatch.setattr(probes, "connection", unreachable)

    response = Client().get("/readyz")

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks == {"database": "unreachable: unable to open database file"}
    unreachable.close()


def test_readyz_says_a_job_is_stuck_as_jobs_health_does(clock, every_job_ran_just_now):
    # A run of invoice-generation alive (fresh heartbeat) for two hours, with no usual time known yet.
    JobRun.objects.filter(job_name="invoice-generation").delete()
    JobRun.objects.create(job_name="invoice-generation", as_of=clock.now(), status="running",
                          started_at=clock.now() - timedelta(hours=2), heartbeat_at=clock_module.wall_now())
    health = {h.name: h for h in job_health(clock.now())}
    assert health["invoice-generation"].state == "stuck"

    response = Client().get("/readyz")

    assert response.status_code == 503
    assert response.json()["checks"]["schedules"] == (
        f"job invoice-generation (0 1 * * *) is stuck: {health['invoice-generation'].reason}")


def test_readyz_is_ready_on_a_new_installation_whose_jobs_never_ran(db):
    check_encryption_key()
    assert {h.state for h in job_health()} <= {"never", "off"}

    assert Client().get("/readyz").status_code == 200
