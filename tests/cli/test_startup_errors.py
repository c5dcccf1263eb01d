"""What an operator sees when the environment cannot work: one line naming the variable or the directory
and what is needed, a non-zero exit, no traceback, and nothing started."""

import os
import shutil
import subprocess

import pytest
from cryptography.fernet import Fernet

from cobrador.core.models import EncryptionCanary
from tests.processes import _cobrador_command, run, worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

COMMANDS = [("worker", "--drain"), ("jobs", "run", "invoice-generation"), ("jobs", "list"),
            ("manage", "migrate"), ("web", "--port", "9")]


def assert_one_line_error(result, *needles):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cobrador: error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_malformed_encryption_key_fails_every_command_at_start(command):
    result = run(*command, env=worker_env(COBRADOR_ENCRYPTION_KEY="notakey"), timeout=60)
    assert_one_line_error(result, "COBRADOR_ENCRYPTION_KEY", "not a valid encryption key")


def test_a_malformed_key_file_in_the_data_directory_is_named(tmp_path):
    (tmp_path / "encryption_key").write_text("notakey\n")
    result = run("jobs", "list", env=worker_env(COBRADOR_ENCRYPTION_KEY=None, COBRADOR_DATA_DIR=str(tmp_path)))
    assert_one_line_error(result, str(tmp_path / "encryption_key"))


def test_a_wrong_key_stops_jobs_run_before_it_writes_anything():
    assert EncryptionCanary.objects.exists()  # written when the test database was migrated
    result = run("jobs", "run", "invoice-generation",
                 env=worker_env(COBRADOR_ENCRYPTION_KEY=Fernet.generate_key().decode()), timeout=60)
    assert_one_line_error(result, "COBRADOR_ENCRYPTION_KEY")


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_data_directory_that_cannot_be_created_is_named(tmp_path, command):
    (tmp_path / "a-file").write_text("")
    data_dir = tmp_path / "a-file" / "data"
    result = run(*command, env=worker_env(COBRADOR_DATA_DIR=str(data_dir), COBRADOR_DATABASE_URL=None), timeout=60)
    assert_one_line_error(result, str(data_dir), "COBRADOR_DATA_DIR")


def _read_only(directory) -> list[str]:
    """A command prefix that runs with `directory` read-only: a read-only bind mount in a private mount
    namespace when we are root (permissions do not stop root), else the directory's mode."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        return []
    if shutil.which("unshare") is None:
        pytest.skip("root without unshare cannot make a directory read-only")
    probe = subprocess.run(["unshare", "-m", "sh", "-c", f"mount --bind {directory} {directory} && "
                            f"mount -o remount,bind,ro {directory} {directory}"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount read-only here: {probe.stderr.decode().strip()}")
    return ["unshare", "-m", "sh", "-c", f'mount --bind {directory} {directory} && '
            f'mount -o remount,bind,ro {directory} {directory} && exec "$@"', "read-only"]


def _run_read_only(directory, *args, env):
    return subprocess.run([*_read_only(directory), *_cobrador_command(), *args], env=env, capture_output=True,
                          text=True, timeout=60, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("what, env, needle", [
    ("keys to generate", {"COBRADOR_ENCRYPTION_KEY": None, "COBRADOR_SECRET_KEY": None}, "secret_key"),
    ("a SQLite database", {"COBRADOR_DATABASE_URL": None}, "SQLite"),
])
def test_a_read_only_data_directory_is_named_with_what_needs_it(tmp_path, what, env, needle):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "static").mkdir()
    result = _run_read_only(data_dir, "jobs", "list", env=worker_env(COBRADOR_DATA_DIR=str(data_dir), **env))
    assert_one_line_error(result, str(data_dir), needle)


def test_a_read_only_data_directory_stops_the_web_server_at_collectstatic(tmp_path):
    # Keys from the environment and the test database elsewhere: only the static files need the directory.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "static").mkdir()
    env = worker_env(COBRADOR_DATA_DIR=str(data_dir))
    result = _run_read_only(data_dir, "web", "--port", "9", env=env)
    assert_one_line_error(result, str(data_dir / "static"))
