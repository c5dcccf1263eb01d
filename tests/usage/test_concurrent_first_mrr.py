"""Two transactions giving one new customer their first MRR at once (two subscriptions created in two
requests): both commit, and the ledger has one `new` and one `expansion`, the balance their sum.

On PostgreSQL both found no balance row to lock and both inserted one: the second failed on the unique
constraint (a 500 for a valid sign-up). SQLite's immediate transactions serialize them anyway; the test
runs on both."""

import time

import pytest
from django.db import transaction

from cobrador.subscriptions.services import create_subscription
from cobrador.usage.models import CustomerMrr, MrrMovement
from tests.concurrency import at_once
from tests.conftest import make_org
from tests.subscriptions.conftest import make_account, make_plan

pytestmark = pytest.mark.django_db(transaction=True)


def test_two_first_subscriptions_of_one_customer_at_once_both_commit_with_one_new_movement(clock):
    organization = make_org("Corrida").organization
    account = make_account(organization)
    plans = [make_plan(organization, amount=10000, name="A"), make_plan(organization, amount=5000, name="B")]

    def sign_up(plan):
        with transaction.atomic():
            create_subscription(organization=organization, account=account.public_id, plan=plan.public_id)
            # Hold the transaction open after the ledger write, so the other one reaches its own
            # ledger write before this one commits (on PostgreSQL; SQLite waits at BEGIN).
            time.sleep(0.5)

    at_once(*[lambda plan=plan: sign_up(plan) for plan in plans])
    kinds = sorted(MrrMovement.objects.filter(account=account).values_list("kind", "delta"))
    assert kinds in ([("expansion", 5000), ("new", 10000)], [("expansion", 10000), ("new", 5000)])
    balance = CustomerMrr.objects.get(account=account)
    assert (balance.mrr, balance.first_paid_at is not None) == (15000, True)
