"""The operator's commands: help everywhere, clear errors, non-zero exits on failure. Most run
in-process through cobrador.cli.main; the time-travel switch and the entry point run as real
subprocesses, since they depend on the environment the process starts with."""

import argparse
import re
from datetime import UTC, datetime

import pytest
from django.test import Client

from cobrador.cli import build_parser, main
from cobrador.jobs.models import JobRun
from cobrador.organizations.models import ApiKey, Organization
from tests.processes import run, worker_env


def command_paths(parser: argparse.ArgumentParser, prefix=()) -> list[tuple[str, ...]]:
    """Every command and subcommand the parser knows, e.g. ("jobs", "run")."""
    paths = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, subparser in action.choices.items():
                paths += command_paths(subparser, (*prefix, name))
    return paths


ALL_COMMANDS = command_paths(build_parser())


def cli(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def dunning_settings_status(key: str) -> int:
    return Client().get("/v1/organizations/settings/dunning", headers={"Authorization": f"Bearer {key}"}).status_code


def created_org(out: str) -> tuple[str, str]:
    match = re.search(r"organization (org_\w+) .*\nAPI key +(sk_\w+)", out)
    assert match, out
    return match.group(1), match.group(2)


def test_the_parser_knows_the_commands_operators_need():
    assert {("up",), ("web",), ("worker",), ("org", "create"), ("key", "create"), ("key", "revoke"),
            ("jobs", "list"), ("jobs", "run"), ("manage",)} <= set(ALL_COMMANDS)


@pytest.mark.parametrize("command", ALL_COMMANDS, ids=lambda c: " ".join(c) or "cobrador")
def test_every_command_has_help(command, capsys):
    try:
        code = main([*command, "--help"])
    except SystemExit as exit_info:  # argparse exits after printing help
        code = exit_info.code
    out, _ = capsys.readouterr()
    assert code in (0, None)
    # `manage --help` is Django's own list of management commands.
    assert out.startswith("usage: cobrador") or "Type 'cobrador manage help <subcommand>'" in out


@pytest.mark.django_db
def test_org_create_prints_an_id_and_a_live_key_that_authenticates(capsys):
    code, out, err = cli(capsys, "org", "create", "Acme Ltda", "--mode", "live")

    assert code == 0, err
    org_id, key = created_org(out)
    assert key.startswith("sk_live_")
    organization = Organization.objects.get(public_id=org_id)
    assert (organization.name, organization.mode) == ("Acme Ltda", "live")
    assert dunning_settings_status(key) == 200
    assert dunning_settings_status(key + "x") == 401


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["", "   "])
def test_org_create_with_an_empty_name_fails_clearly(name, capsys):
    code, out, err = cli(capsys, "org", "create", name)

    assert code != 0
    assert "NAME must not be empty" in err
    assert not Organization.objects.exists()


@pytest.mark.django_db
def test_org_create_refuses_what_the_database_would_not_hold(capsys):
    code, _, err = cli(capsys, "org", "create", "x" * 201)
    assert code != 0 and "NAME must be at most 200 characters" in err
    code, _, err = cli(capsys, "org", "create", "Acme", "--billing-email", "not-an-address")
    assert code != 0 and "--billing-email 'not-an-address' is not an e-mail address" in err
    assert not Organization.objects.exists()

    code, out, err = cli(capsys, "org", "create", "  Acme  ", "--billing-email", "billing@acme.test")
    assert code == 0, err
    assert Organization.objects.values_list("name", "billing_email").get() == ("Acme", "billing@acme.test")


@pytest.mark.django_db
def test_org_create_names_the_option_a_service_refusal_is_about(capsys):
    # The checks live in organizations.services (ValidationFailed on a field); the CLI names the option.
    code, out, err = cli(capsys, "org", "create", "\t")
    assert (code, out) == (2, "")
    assert err == "cobrador: error: NAME must not be empty\n"
    code, out, err = cli(capsys, "org", "create", "Acme", "--billing-email", "acme@")
    assert (code, out) == (2, "")
    assert err == "cobrador: error: --billing-email 'acme@' is not an e-mail address\n"
    assert not Organization.objects.exists()


@pytest.mark.django_db
def test_key_create_and_revoke(capsys):
    _, out, _ = cli(capsys, "org", "create", "Acme", "--mode", "test")
    org_id, first_key = created_org(out)

    code, out, err = cli(capsys, "key", "create", "--org", org_id, "--name", "ci")
    assert code == 0, err
    match = re.search(r"key (key_\w+): (sk_test_\w+)", out)
    assert match, out
    key_id, second_key = match.groups()
    assert ApiKey.objects.get(public_id=key_id).name == "ci"
    assert dunning_settings_status(second_key) == 200

    code, out, err = cli(capsys, "key", "revoke", key_id)
    assert code == 0, err
    assert f"revoked {key_id}" in out
    assert dunning_settings_status(second_key) == 401
    assert dunning_settings_status(first_key) == 200  # only that key


@pytest.mark.django_db
def test_key_commands_name_what_they_could_not_find(capsys):
    code, _, err = cli(capsys, "key", "create", "--org", "org_missing")
    assert code != 0 and "no organization 'org_missing'" in err
    code, _, err = cli(capsys, "key", "revoke", "key_missing")
    assert code != 0 and "no API key 'key_missing'" in err


@pytest.mark.django_db
def test_jobs_list_shows_the_schedules_with_their_next_fire_time(clock, capsys):
    run_before = JobRun.objects.create(job_name="retention-cleanup", as_of=clock.now(), started_at=clock.now(),
                                       finished_at=clock.now(), status="succeeded", items_done=7)
    code, out, err = cli(capsys, "jobs", "list")

    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split()[:6] == ["NAME", "CRON", "NEXT", "RUN", "(UTC)", "LAST"]
    rows = {line.split()[0]: line for line in lines[1:]}
    # The clock is frozen at 2026-03-01 12:00 UTC.
    assert re.match(r"webhook-delivery +\* \* \* \* \* +2026-03-01 12:01 +never +never +never +-$",
                    rows["webhook-delivery"])
    assert re.match(r"retention-cleanup +0 3 \* \* \* +2026-03-02 03:00 +2026-03-01 12:00:00 +ok +"
                    r"2026-03-01 12:00:00 +succeeded: 7 done", rows["retention-cleanup"])
    # Ordered by the latest run: the one job that ran comes first.
    assert lines[1].startswith("retention-cleanup")
    assert run_before.pk


@pytest.mark.django_db
def test_jobs_list_names_the_variable_behind_an_invalid_cron(monkeypatch, capsys):
    monkeypatch.setenv("COBRADOR_CRON_WEBHOOK_DELIVERY", "61 * * * *")
    code, _, err = cli(capsys, "jobs", "list")
    assert code != 0
    assert "COBRADOR_CRON_WEBHOOK_DELIVERY" in err


@pytest.mark.django_db
def test_jobs_run_writes_a_job_run(capsys):
    code, out, err = cli(capsys, "jobs", "run", "webhook-delivery")

    assert code == 0, err
    run = JobRun.objects.get()
    assert (run.job_name, run.trigger, run.status) == ("webhook-delivery", "cli", "succeeded")
    assert out.startswith("webhook-delivery as of ")


@pytest.mark.django_db
def test_jobs_run_of_an_unknown_job_fails_clearly(capsys):
    code, _, err = cli(capsys, "jobs", "run", "no-such-job")
    assert code != 0
    assert "unknown job 'no-such-job'" in err and "webhook-delivery" in err
    assert not JobRun.objects.exists()


@pytest.mark.django_db
def test_jobs_run_at_a_malformed_time_fails_clearly(capsys):
    code, _, err = cli(capsys, "jobs", "run", "webhook-delivery", "--at", "yesterday")
    assert code != 0
    assert "--at 'yesterday' is not an ISO-8601 time" in err


@pytest.mark.django_db
def test_jobs_run_at_now_needs_no_time_travel(capsys):
    from cobrador.core import clock

    code, _, err = cli(capsys, "jobs", "run", "webhook-delivery", "--at", clock.now().isoformat())
    assert code == 0, err
    assert not clock.is_frozen(), "the CLI left the clock frozen"


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_jobs_run_at_a_past_time_needs_time_travel():
    refused = run("jobs", "run", "retention-cleanup", "--at", "2026-01-15T03:00:00Z",
                  env=worker_env(COBRADOR_TIME_TRAVEL=None))
    assert refused.returncode != 0
    assert "COBRADOR_TIME_TRAVEL=1" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert not JobRun.objects.exists()

    accepted = run("jobs", "run", "retention-cleanup", "--at", "2026-01-15T03:00:00Z",
                   env=worker_env(COBRADOR_TIME_TRAVEL="1"))
    assert accepted.returncode == 0, accepted.stderr
    job_run = JobRun.objects.get()
    assert job_run.as_of == datetime(2026, 1, 15, 3, 0, tzinfo=UTC)
    assert (job_run.job_name, job_run.trigger, job_run.status) == ("retention-cleanup", "cli", "succeeded")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_installed_entry_point_answers_help_and_fails_with_a_status():
    help_result = run("--help")
    assert help_result.returncode == 0
    assert "worker" in help_result.stdout and "jobs" in help_result.stdout

    unknown = run("no-such-command")
    assert unknown.returncode != 0
    assert "invalid choice" in unknown.stderr
