"""`cobrador worker` as an operator runs it: a real process on the test database."""

import signal
import time

import pytest
from cryptography.fernet import Fernet
from django_ox.models import OxTask

from cobrador.core.models import EncryptionCanary
from cobrador.core.startup import check_encryption_key
from tests import queue_tasks
from tests.processes import output, run, start_worker, wait_ready, wait_until, worker_env
from tests.queue_tasks import read_lines

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_drain_runs_what_is_ready_and_exits_by_itself(tmp_path):
    log = tmp_path / "runs.log"
    queue_tasks.record.enqueue(path=str(log), label="ready")

    started = time.monotonic()
    result = run("worker", "--drain", timeout=30)

    assert result.returncode == 0, result.stderr
    assert [w[:2] for w in read_lines(log)] == [["ran", "ready"]]
    assert OxTask.objects.get().status == "SUCCESSFUL"
    assert time.monotonic() - started < 20

    again = run("worker", "--drain", timeout=30)  # nothing ready now: still exits at once
    assert again.returncode == 0, again.stderr


def test_a_database_encrypted_with_another_key_stops_the_worker_with_a_clear_message():
    check_encryption_key()  # writes the canary with this process's COBRADOR_ENCRYPTION_KEY
    assert EncryptionCanary.objects.count() == 1

    same_key = run("worker", "--drain", timeout=30)
    assert same_key.returncode == 0, same_key.stderr

    other_key = Fernet.generate_key().decode()
    result = run("worker", "--drain", env=worker_env(COBRADOR_ENCRYPTION_KEY=other_key), timeout=30)
    assert result.returncode != 0
    assert "COBRADOR_ENCRYPTION_KEY" in result.stderr
    assert "Traceback" not in result.stderr
    assert EncryptionCanary.objects.count() == 1


def test_sigterm_stops_the_worker_cleanly_after_its_running_task(tmp_path):
    log = tmp_path / "runs.log"
    queue_tasks.slow_record.enqueue(path=str(log), label="in-flight", seconds=1)
    worker = start_worker("--interval", "0.1")
    try:
        wait_until(lambda: read_lines(log), timeout=15, message="the worker to start the task")
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=8)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert exit_code == 0, output(worker)
    # The task it was running when told to stop was finished, not abandoned.
    assert [w[0] for w in read_lines(log)] == ["started", "ran"]
    assert OxTask.objects.get().status == "SUCCESSFUL"


def test_sigterm_stops_an_idle_worker_within_seconds():
    worker = start_worker("--interval", "0.1")
    try:
        wait_ready(worker)
        worker.send_signal(signal.SIGTERM)
        started = time.monotonic()
        exit_code = worker.wait(timeout=8)
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    assert exit_code == 0, output(worker)
    assert time.monotonic() - started < 5


def test_a_database_that_was_never_migrated_gets_a_clear_error(tmp_path):
    env = worker_env(COBRADOR_DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    for command in (["worker", "--drain"], ["jobs", "list"]):
        result = run(*command, env=env, timeout=30)
        assert result.returncode != 0
        assert "cobrador manage migrate" in result.stderr
        assert "Traceback" not in result.stderr


def test_an_unreachable_database_gets_a_clear_error():
    # Port 9 (discard) on loopback: nothing listens there, so the connection is refused at once.
    result = run("worker", "--drain", env=worker_env(COBRADOR_DATABASE_URL="postgres://cobrador@127.0.0.1:9/none"),
                 timeout=30)
    assert result.returncode != 0
    assert "cannot use the database" in result.stderr
    assert "Traceback" not in result.stderr
