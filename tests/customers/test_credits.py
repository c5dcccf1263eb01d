from datetime import UTC, date, datetime, timedelta

import pytest
from django.db import transaction
from django.db.models import Sum
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cobrador.core import clock as clock_module
from cobrador.customers.credits import consume_credit, credit_balance, grant_credit
from cobrador.customers.models import BillingAccount, CreditGrant, CreditUsage
from cobrador.invoicing.models import Invoice
from tests.customers.conftest import create_account

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _credits(account_id):
    return f"/v1/billing_accounts/{account_id}/credits"


def test_grant_and_list_with_balances(api, account, clock):
    response = api.post(_credits(account["id"]), {"amount": 5000, "reason": "goodwill",
                                                  "expires_at": "2026-04-01T00:00:00Z"})
    assert response.status_code == 201, response.content
    grant = response.json()
    assert grant["id"].startswith("cr_")
    assert (grant["amount"], grant["remaining"], grant["currency"]) == (5000, 5000, "BRL")
    assert grant["status"] == "available" and grant["reason"] == "goodwill"
    api.post(_credits(account["id"]), {"amount": 700})
    api.post(_credits(account["id"]), {"amount": 100, "currency": "USD"})

    listing = api.get(_credits(account["id"])).json()
    assert [g["amount"] for g in listing["data"]] == [100, 700, 5000]
    assert listing["balances"] == {"BRL": 5700, "USD": 100}

    clock.set(datetime(2026, 4, 1, tzinfo=UTC))  # the first grant expires now
    listing = api.get(_credits(account["id"])).json()
    assert listing["balances"] == {"BRL": 700, "USD": 100}
    assert listing["data"][-1]["status"] == "expired"


@pytest.mark.parametrize("body,field", [
    ({"amount": 0}, "amount"),
    ({"amount": -100}, "amount"),
    ({"amount": 10.5}, "amount"),
    ({"amount": "100"}, "amount"),
    ({}, "amount"),
    ({"amount": 100, "currency": "XYZ"}, "currency"),
    ({"amount": 100, "expires_at": "2026-03-01T12:00:00Z"}, "expires_at"),   # now is not the future
    ({"amount": 100, "expires_at": "2026-02-01T00:00:00Z"}, "expires_at"),
    ({"amount": 100, "expires_at": "2026-04-01T00:00:00"}, "expires_at"),    # no timezone
    ({"amount": 100, "expires_at": 1780000000}, "expires_at"),
    ({"amount": 100, "expires_at": "soon"}, "expires_at"),
    ({"amount": 100, "reason": "x" * 201}, "reason"),
    ({"amount": 100, "remaining": 50}, "remaining"),
])
def test_bad_grants_are_422_naming_the_field_and_grant_nothing(api, account, clock, body, field):
    response = api.post(_credits(account["id"]), body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not CreditGrant.objects.exists()


def test_grant_uses_the_organization_currency_by_default(api, account, clock):
    api.organization.default_currency = "USD"
    api.organization.save()
    assert api.post(_credits(account["id"]), {"amount": 100}).json()["currency"] == "USD"


def _invoice(account: BillingAccount, number: int) -> Invoice:
    return Invoice.objects.create(organization_id=account.organization_id, account=account, number=number,
                                  subtotal=0, total=0, amount_due=0, due_date=date(2026, 3, 1),
                                  created_at=clock_module.now())


def test_consumed_grants_show_as_used(api, account, clock):
    grant = api.post(_credits(account["id"]), {"amount": 300}).json()
    ba = BillingAccount.objects.get(public_id=account["id"])
    with transaction.atomic():
        assert consume_credit(account_id=ba.pk, currency="BRL", up_to=1000, invoice=_invoice(ba, 1),
                              as_of=clock.now()) == 300
    listed = api.get(_credits(account["id"])).json()
    assert listed["data"][0]["id"] == grant["id"]
    assert (listed["data"][0]["remaining"], listed["data"][0]["status"]) == (0, "used")
    assert listed["balances"] == {}


grant_step = st.tuples(st.just("grant"), st.integers(1, 10_000),
                       st.one_of(st.none(), st.integers(1, 60 * 24 * 40)))  # expires in minutes, or never
consume_step = st.tuples(st.just("consume"), st.integers(-5, 15_000), st.just(None))
advance_step = st.tuples(st.just("advance"), st.integers(0, 60 * 24 * 20), st.just(None))  # minutes


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.one_of(grant_step, consume_step, advance_step), min_size=1, max_size=25))
def test_credit_balance_never_goes_negative_and_consumption_never_exceeds_it(api, steps):
    """Random grants (some expiring), consumption and a moving clock: every grant's remaining stays in
    [0, amount], the balance is never negative, and an invoice takes min(asked, balance) exactly, only
    from grants unexpired at that moment."""
    clock_module.set(START)
    try:
        with transaction.atomic():
            account = BillingAccount.objects.create(organization=api.organization, name="H", email="h@example.com",
                                                    created_at=START, updated_at=START)
            invoice_number = 0
            for kind, value, expires_in in steps:
                now = clock_module.now()
                if kind == "grant":
                    expires_at = now + timedelta(minutes=expires_in) if expires_in is not None else None
                    grant_credit(account=account, amount=value, expires_at=expires_at)
                elif kind == "advance":
                    clock_module.advance(timedelta(minutes=value))
                else:
                    before = credit_balance(account=account, as_of=now)
                    invoice_number += 1
                    invoice = _invoice(account, invoice_number)
                    applied = consume_credit(account_id=account.pk, currency="BRL", up_to=value, invoice=invoice,
                                             as_of=now)
                    assert 0 <= applied <= before
                    assert applied == min(max(value, 0), before)
                    assert credit_balance(account=account, as_of=now) == before - applied
                    used = CreditUsage.objects.filter(invoice=invoice).select_related("grant")
                    assert sum(u.amount for u in used) == applied
                    assert all(u.grant.expires_at is None or u.grant.expires_at > now for u in used)
                assert credit_balance(account=account) >= 0
                for grant in CreditGrant.objects.filter(account=account):
                    assert 0 <= grant.remaining <= grant.amount
                    consumed = grant.usages.aggregate(s=Sum("amount"))["s"] or 0
                    assert grant.amount - grant.remaining == consumed
            transaction.set_rollback(True)
    finally:
        clock_module.set(None)


def test_other_accounts_credit_is_never_consumed(api, account, clock):
    mine = BillingAccount.objects.get(public_id=account["id"])
    theirs = BillingAccount.objects.get(public_id=create_account(api, email="x@example.com")["id"])
    grant_credit(account=theirs, amount=1000)
    with transaction.atomic():
        assert consume_credit(account_id=mine.pk, currency="BRL", up_to=500, invoice=_invoice(mine, 1),
                              as_of=clock.now()) == 0
    assert credit_balance(account=theirs) == 1000
