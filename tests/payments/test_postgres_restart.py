"""Charging and payment-retry while PostgreSQL restarts (issue 15 item 14), checked by SQL afterwards.

Two `cobrador jobs run` processes, invoice-charging (cards through the Pagar.me fake over HTTP) and
payment-retry (the sandbox), are in the middle of their batches when the server restarts and cuts every
connection. Their runs die; the next runs (after the dead runs' heartbeats go stale) and reconciliation
finish the work. Afterwards: every invoice charged once at the provider and paid once, every dunning
attempt made once per method, nothing left in flight.

PostgreSQL only, and run once (no SQLite twin): the server is shared with other test runs, so this is
the one test that restarts it (see tests/processes.restart_postgres).
"""

import time
from datetime import timedelta

import pytest
from django.db import connection, connections

from cobrador.core import clock
from cobrador.dunning import retries
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job
from tests import processes
from tests.conftest import make_org
from tests.dunning.conftest import day
from tests.dunning.test_concurrency import bulk_failed_invoices
from tests.fakes.pagarme import FakePagarme
from tests.gateways.conftest import make_config
from tests.payments.billing import add_card, make_account, make_invoice

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RETRY_AT = day(1, 6)
CHARGED = 150
IN_DUNNING = 600


class SlowPagarme(FakePagarme):
    """A provider that takes 40 ms per charge: the charging run is still going when the server restarts."""

    def route(self, request):
        if request.method == "POST":
            time.sleep(0.04)
        return super().route(request)


def rows(sql: str, *params) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def test_charging_and_payment_retry_survive_a_postgresql_restart_without_a_double_charge(settings):
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL server restart (SQLite has no server)")
    settings.JOB_ABANDONED_AFTER = 1
    try:
        with SlowPagarme() as fake:
            dunning_org = make_org("Retried", "test").organization
            bulk_failed_invoices(dunning_org, IN_DUNNING)  # sandbox cards declined at day 0: retries due at day 1
            card_org = make_org("Charged", "test").organization
            # Provider hosts are installation settings (the sweeps' processes get them through worker_env).
            settings.PAGARME_BASE_URL, settings.PAGARME_JWKS_URL = fake.url, fake.jwks_url
            make_config(card_org, "pagarme", ["card"], {"secret_key": fake.secret_key}, {"timeout_seconds": 5})
            for i in range(CHARGED):
                account = make_account(card_org, name=f"Customer {i}")
                add_card(account, "card_fake0001")
                make_invoice(account, amount=1000 + i)
            clock.set(RETRY_AT)
            env = processes.worker_env(COBRADOR_TIME_TRAVEL="1", COBRADOR_DUNNING_BATCH_SIZE="10",
                                       COBRADOR_CHARGING_BATCH_SIZE="10", COBRADOR_CHARGING_CONCURRENCY="2",
                                       **processes.HEARTBEAT_ENV)
            at = RETRY_AT.isoformat()
            sweeps = [processes.start("jobs", "run", name, "--at", at, env=env)
                      for name in ("invoice-charging", "payment-retry")]
            try:
                processes.wait_until(
                    lambda: (rows("SELECT count(*) FROM payments_payment WHERE organization_id = %s",
                                  card_org.pk)[0][0] >= 20
                             and rows("SELECT count(*) FROM dunning_dunninginvoice WHERE next_attempt_number = 2")[0][0]
                             >= 20) or any(p.poll() is not None for p in sweeps),
                    timeout=120, interval=0.02, message="both sweeps to be halfway")
                assert all(p.poll() is None for p in sweeps), [processes.output(p) for p in sweeps]
                down = processes.restart_postgres()
                for proc in sweeps:  # cut off mid-batch, each run fails or dies; none is left to finish
                    try:
                        proc.wait(timeout=60)
                    except Exception:  # noqa: BLE001 - a process still hanging is killed below
                        pass
            finally:
                for proc in sweeps:
                    processes.kill(proc)
            charged_before = rows("SELECT count(*) FROM payments_payment WHERE organization_id = %s "
                                  "AND status = 'succeeded'", card_org.pk)[0][0]
            retried_before = rows("SELECT count(*) FROM dunning_dunninginvoice WHERE next_attempt_number = 2")[0][0]
            assert charged_before < CHARGED and retried_before < IN_DUNNING, "the restart came after the work"

            # Recovery: the dead runs are abandoned, the sweeps rerun, reconciliation settles what was in flight.
            for name in ("invoice-charging", "payment-retry"):
                processes.wait_until_abandonable(name, after=1)
            clock.set(RETRY_AT + retries.LEASE + timedelta(seconds=1))
            assert run_job("invoice-charging", as_of=RETRY_AT).status == "succeeded"
            assert run_job("payment-retry", as_of=RETRY_AT).status == "succeeded"
            for minutes in (30, 120):
                clock.set(RETRY_AT + timedelta(minutes=minutes))
                assert run_job("payment-reconciliation").status in JobRun.SUCCESSFUL

            # --- invariants, by SQL ---
            # Charging: one payment per invoice, charged once at the provider, every invoice paid.
            assert rows("SELECT invoice_id FROM payments_payment WHERE organization_id = %s GROUP BY invoice_id "
                        "HAVING count(*) <> 1", card_org.pk) == []
            assert rows("SELECT count(*) FROM invoicing_invoice WHERE organization_id = %s AND status <> 'paid'",
                        card_org.pk) == [(0,)]
            codes = [code for code, in rows("SELECT public_id FROM payments_payment WHERE organization_id = %s",
                                            card_org.pk)]
            assert sorted(fake.charges_for(code) for code in codes) == [1] * CHARGED, "charged twice or never"
            # payment-retry: attempt 1 once per invoice and method; one payment per (invoice, attempt, method).
            assert rows("SELECT count(DISTINCT invoice_id) FROM dunning_recoveryrecord WHERE attempt_number = 1 "
                        "AND organization_id = %s", dunning_org.pk) == [(IN_DUNNING,)]
            assert rows("SELECT invoice_id, method FROM dunning_recoveryrecord WHERE attempt_number = 1 "
                        "GROUP BY invoice_id, method HAVING count(*) > 1") == []
            assert rows("SELECT invoice_id, method FROM payments_payment WHERE source = 'dunning' "
                        "AND attempt_number = 1 GROUP BY invoice_id, method HAVING count(*) > 1") == []
            assert rows("SELECT status, next_attempt_number, count(*) FROM dunning_dunninginvoice "
                        "GROUP BY status, next_attempt_number") == [("scheduled", 2, IN_DUNNING)]
            assert rows("SELECT reference FROM gateways_sandboxcharge GROUP BY reference HAVING count(*) > 1") == []
            # Nothing in flight, no run left running.
            assert rows("SELECT count(*) FROM payments_payment WHERE status IN ('processing', 'unknown')") == [(0,)]
            assert rows("SELECT count(*) FROM dunning_recoveryrecord WHERE outcome = 'processing'") == [(0,)]
            assert rows("SELECT count(*) FROM jobs_jobrun WHERE status = 'running'") == [(0,)]
            assert down < 60
    finally:
        clock.set(None)
        connections.close_all()
