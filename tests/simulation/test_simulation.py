"""`cobrador simulate`: a demo organization run through simulated days by every registered job, its
customers acting through the API and paying at the sandbox by signed callbacks.

The in-process tests run on the test database (SQLite or PostgreSQL, whichever the suite uses); the
command-line test runs `cobrador simulate` in a subprocess on a database of its own, as from a fresh
clone."""

import json
import os
import re
import subprocess
import sys
import time
from datetime import UTC, datetime

import pytest

from cobrador.jobs.catalog import JOBS
from cobrador.notifications.email_config import FILE_BACKEND
from cobrador.simulation import run_simulation
from cobrador.simulation.engine import Options, SimulationRefused
from cobrador.simulation.report import render_json, render_text
from tests.processes import REPO_ROOT

PUBLIC_ID = re.compile(r"\b[a-z]+_[A-Za-z0-9]{16,}\b")


@pytest.fixture
def mail_dir(settings, tmp_path):
    directory = tmp_path / "mails"
    settings.MAIL_DIR = directory
    settings.MAILERS = {"default": {"BACKEND": FILE_BACKEND, "OPTIONS": {"file_path": str(directory)}}}
    return directory


def _story(summary_json: dict, story: str) -> list[str]:
    featured = {f["story"]: f for f in summary_json["featured"]}
    return [line["text"] for line in featured[story]["lines"]]


def _index(lines: list[str], fragment: str, after: int = -1) -> int:
    for i, line in enumerate(lines):
        if i > after and fragment in line:
            return i
    raise AssertionError(f"no line with {fragment!r} after line {after}:\n" + "\n".join(lines))


@pytest.mark.django_db(transaction=True)
def test_forty_days_of_twenty_accounts_show_every_flow(mail_dir):
    simulation, summary = run_simulation(Options(days=40, accounts=20, seed=1))
    report = json.loads(render_json(simulation, summary))

    assert report["errors"] == []
    # Every registered job ran as scheduled, and none failed.
    scheduled = {name for name, spec in JOBS.items() if spec.effective_cron}
    assert set(report["jobs"]) == scheduled
    for name, job in report["jobs"].items():
        assert job["failed"] == job["partial"] == 0, (name, job)
    assert report["jobs"]["subscription-renewal"]["runs"] == 40
    assert report["jobs"]["payment-retry"]["runs"] == 40 * 4
    # Every paid invoice gets its NFS-e through the simulation's NFe.io, one note each.
    nfse = report["nfse"]
    assert nfse["by_status"].get("issued", 0) > 0 and nfse["by_status"].get("failed", 0) == 0
    assert nfse["by_status"].get("blocked", 0) == 0
    assert sum(nfse["at_nfeio"].values()) == sum(n for s, n in nfse["by_status"].items() if s != "pending")

    counts = report["timeline"]
    assert counts["sign-ups"] == 20 + 1  # and the prospect whose proposal was accepted
    assert counts["renewals"] > 0 and counts["invoices"] > 0 and counts["trials started"] > 0
    assert counts["cards declined"] > 0
    assert counts["boletos paid"] + counts["PIX paid"] > 0
    assert counts["suspended"] >= 1 and counts["reactivated"] >= 1
    assert report["invoices"]["by_status"]["paid"]["count"] > 0
    assert report["payments"]["card"]["failed"]["count"] > 0
    assert report["payments"]["bank_slip"]["succeeded"]["count"] > 0
    assert report["payments"]["pix"]["succeeded"]["count"] > 0
    # Boletos and PIX were paid by signed callbacks through the real callback view.
    callbacks = report["callbacks"]
    assert callbacks["stored"] == {"sandbox processed": callbacks["sent"]} and callbacks["answered"] == {
        "200": callbacks["sent"]} and callbacks["sent"] > 0
    assert report["dunning"]["suspended"] >= 1 and report["dunning"]["reactivated"] >= 1
    # Billing at the moment it happens: sign-ups invoiced at once, upgrades prorated, one-off invoices.
    kinds = report["invoices"]["by_kind"]
    assert report["customer_actions"]["upgrade"] == kinds["proration"]["count"] == 2
    assert report["customer_actions"]["bill_one_off"] == kinds["one_off"]["count"] == 1
    assert kinds["proration"]["amount"] > 0 and kinds["one_off"]["amount"] > 0

    # Every event reached the demo endpoint once, signed.
    webhooks = report["webhooks"]
    assert webhooks["bad_signatures"] == webhooks["still_pending"] == 0
    assert webhooks["received"] == sum(simulation.timeline.event_types.values())
    assert webhooks["by_type"]["billing_account.suspended"] >= 1
    assert webhooks["by_type"]["subscription.renewed"] == counts["renewals"]

    notices = report["notices"]
    assert notices["not_sent"] == {}
    assert notices["written"]["invoice_created"] == {"email": counts["invoices"], "in_app": counts["invoices"]}
    assert notices["written"]["account_suspended"]["email"] >= 1
    assert notices["written"]["trial_ending"]["email"] >= 1
    assert notices["mail_files"] == sum(c.get("email", 0) for c in notices["written"].values())
    assert notices["mail_files"] == len(list(mail_dir.glob("*.eml"))) > 0

    # The delinquent account can be followed: declined, retried, suspended, pays by PIX, reactivated.
    padaria = _story(report, "suspended")
    declined = _index(padaria, "card declined")
    retried = _index(padaria, "retry 1:", declined)
    exhausted = _index(padaria, "dunning exhausted", retried)
    suspended = _index(padaria, "ACCOUNT SUSPENDED", exhausted)
    paid = _index(padaria, "CUSTOMER adds PIX as a way to pay", suspended)
    _index(padaria, "ACCOUNT REACTIVATED", paid)
    # The boleto payer pays each boleto it gets; the trial converts once a card is added.
    boleto = _story(report, "boleto")
    _index(boleto, "boleto payment", _index(boleto, "CUSTOMER pays the boleto", _index(boleto, "boleto pay_")))
    trial = _story(report, "trial")
    _index(trial, "trial converted", _index(trial, "CUSTOMER adds a new card", _index(trial, "trial until")))
    new_card = _story(report, "new_card")
    _index(new_card, "card payment", _index(new_card, "CUSTOMER adds a new card", _index(new_card, "card declined")))

    # Three proposals: one viewed and accepted, one viewed and left to expire, one never opened.
    proposals = report["proposals"]
    assert {k: proposals[k] for k in ("sent", "viewed", "accepted", "expired", "open")} == {
        "sent": 3, "viewed": 2, "accepted": 1, "expired": 2, "open": 0}
    assert proposals["conversion_rate"] == 0.3333 and proposals["time_to_acceptance"]["median_seconds"] == 93600
    assert webhooks["by_type"]["proposal.accepted"] == 1 and webhooks["by_type"]["proposal.expired"] == 2
    assert notices["written"]["proposal_sent"] == {"email": 3}

    text = render_text(simulation, summary)
    assert "ACCOUNT SUSPENDED" in text and "Summary of 40 simulated days, 20 accounts" in text
    assert "by kind: " in text and "proration 2" in text and "one-off 1" in text
    assert "Proposals: 3 sent, 2 viewed, 1 accepted, 0 declined, 2 expired, 0 open; conversion 33%" in text
    assert str(mail_dir) in text


@pytest.mark.django_db(transaction=True)
def test_a_database_that_holds_organizations_is_refused(mail_dir):
    from cobrador.organizations.models import Organization
    from cobrador.organizations.services import create_organization

    create_organization(name="Someone real", mode="live")
    with pytest.raises(SimulationRefused):
        run_simulation(Options(days=2, accounts=2, seed=1))
    assert list(Organization.objects.values_list("name", flat=True)) == ["Someone real"]


def _masked(output: str) -> str:
    """The report without what differs from run to run: public ids, paths, the receiver's port, timing."""
    report = json.loads(output)
    for key in ("elapsed_seconds", "simulation"):
        report.pop(key)
    report["setup"].pop("webhook_endpoint")
    report["notices"].pop("mail_dir")
    return PUBLIC_ID.sub("<id>", json.dumps(report, sort_keys=True))


@pytest.mark.slow
@pytest.mark.own_database
def test_cobrador_simulate_runs_on_a_database_of_its_own_and_a_seed_tells_one_story(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("COBRADOR_")}
    env["PYTHONPATH"] = str(REPO_ROOT)

    def simulate(directory, *extra):
        return subprocess.Popen(
            [sys.executable, "-m", "cobrador.cli", "simulate", "--days", "10", "--accounts", "12", "--seed", "3",
             "--start", "2026-05-04T00:00:00Z", "--dir", str(directory), *extra],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    # Two runs with the same seed at once, each in a directory (and SQLite database) of its own.
    first, second = simulate(tmp_path / "a", "--json"), simulate(tmp_path / "b", "--json")
    outputs = [process.communicate(timeout=300) for process in (first, second)]
    assert first.returncode == 0 and second.returncode == 0, outputs[0][1] + outputs[1][1]
    report = json.loads(outputs[0][0])
    directory = tmp_path / "a"
    assert report["errors"] == []
    assert report["simulation"]["start"] == datetime(2026, 5, 4, tzinfo=UTC).isoformat()
    assert report["simulation"]["database"] == f"sqlite3 {directory / 'cobrador.sqlite3'}"
    assert (directory / "cobrador.sqlite3").is_file()
    assert report["notices"]["mail_dir"] == str(directory / "mails")
    assert report["notices"]["mail_files"] == len(list((directory / "mails").glob("*.eml"))) > 0
    # 12 accounts, and the one prospect (of 3) whose proposal was accepted.
    assert report["timeline"]["sign-ups"] == 12 + 1 and report["timeline"]["invoices"] > 0
    assert report["timeline"]["cards declined"] > 0 and report["callbacks"]["sent"] > 0
    assert [d["date"] for d in report["days"]][0] == "2026-05-04"
    # The same story, apart from ids.
    assert _masked(outputs[0][0]) == _masked(outputs[1][0])

    # The same directory again: its database already holds the demo organization.
    again = simulate(directory)
    _, stderr = again.communicate(timeout=300)
    assert again.returncode == 2
    assert "already holds organizations" in stderr

    bad = subprocess.run([sys.executable, "-m", "cobrador.cli", "simulate", "--days", "0"], env=env, cwd=tmp_path,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "--days must be between 1 and 3650" in bad.stderr


@pytest.mark.slow
@pytest.mark.own_database
def test_the_default_run_tells_a_whole_dunning_case_and_took_is_the_whole_wall_time(tmp_path):
    """`cobrador simulate` with its defaults (45 days, 100 accounts; about 25 s of CPU on two cores) still
    shows the delinquent account from its declined card to its reactivation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COBRADOR_")}
    env["PYTHONPATH"] = str(REPO_ROOT)

    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "cobrador.cli", "simulate", "--json", "--dir", str(tmp_path / "s")],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    wall = time.monotonic() - started

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["errors"] == []
    assert report["timeline"]["sign-ups"] == 100 + 4  # and the prospects of the 4 accepted proposals (of 10)
    assert report["simulation"]["start"] == datetime(2026, 2, 2, tzinfo=UTC).isoformat()
    assert report["dunning"]["suspended"] >= 1 and report["dunning"]["reactivated"] >= 1
    padaria = _story(report, "suspended")
    retried = _index(padaria, "retry 1:", _index(padaria, "card declined"))
    suspended = _index(padaria, "ACCOUNT SUSPENDED", _index(padaria, "dunning exhausted", retried))
    _index(padaria, "ACCOUNT REACTIVATED", _index(padaria, "CUSTOMER adds PIX as a way to pay", suspended))
    # "took" counts from the command's start (Django's set-up and the migrations included); only the
    # interpreter's own start-up comes before it.
    assert wall * 0.9 - 1 <= report["elapsed_seconds"] <= wall
