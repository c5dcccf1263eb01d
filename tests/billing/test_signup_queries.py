"""The queries of a sign-up, pinned: the account, its card and the subscription with its first invoice
(bench/signup.py measures what they cost). Each request is counted from the API key lookup to the
response, with a webhook endpoint that wants every event. A number that grows is a query that crept in:
look at the list the failure prints, and change the number here only on purpose.

They are the same for the tenth sign-up as for the first (no query per existing row). On PostgreSQL the
bulk inserts (events, deliveries, notices, invoice lines: core/bulk.py) go through the driver's own
cursor, which the count does not see, so its numbers are lower; on SQLite every statement counts."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.billing.signup import create_plan
from tests.webhooks.conftest import register

# Per request. Transaction control (SAVEPOINT / RELEASE in a test, BEGIN / COMMIT in production) excluded.
# The subscription's count includes the one read of the organization's active custom domain for its page links,
# and the MRR ledger's balance row made sure of before it is locked (usage.services._ensure_balance_rows: two
# first subscriptions of one customer at once no longer collide) with the suspension read under that lock.
QUERIES = {"sqlite": {"account": 7, "payment_method": 9, "subscription": 37},
           "postgresql": {"account": 5, "payment_method": 7, "subscription": 27}}
# The organization's first invoice also creates its invoice number sequence (an insert and a locked read).
FIRST_INVOICE_EXTRA = 2


def _counted(queries) -> list[str]:
    return [q["sql"] for q in queries.captured_queries
            if not q["sql"].startswith(("SAVEPOINT", "RELEASE SAVEPOINT", "BEGIN", "COMMIT"))]


def _sign_up(api, plan, n: int) -> dict[str, list[str]]:
    counted = {}
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/v1/billing_accounts", {"name": f"Customer {n}", "email": f"c{n}@example.test",
                                                     "document": "529.982.247-25"})
    assert response.status_code == 201, response.content
    account = response.json()
    counted["account"] = _counted(queries)
    with CaptureQueriesContext(connection) as queries:
        response = api.post(f"/v1/billing_accounts/{account['id']}/payment_methods", {
            "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2040,
            "gateway_token": "tok_sandbox_success"})
    assert response.status_code == 201, response.content
    counted["payment_method"] = _counted(queries)
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/v1/subscriptions", {"account": account["id"], "plan": plan["id"]})
    assert response.status_code == 201, response.content
    assert response.json()["latest_invoice"]["status"] == "open"
    counted["subscription"] = _counted(queries)
    return counted


@pytest.mark.parametrize("nth", [1, 10])
def test_a_sign_up_makes_a_fixed_number_of_queries(test_api, receiver, nth):
    register(test_api, receiver.url)
    plan = create_plan(test_api, amount=4990)
    for n in range(nth - 1):
        _sign_up(test_api, plan, n)
    counted = _sign_up(test_api, plan, nth)
    queries = QUERIES[connection.vendor]
    pinned = {**queries, "subscription": queries["subscription"] + (FIRST_INVOICE_EXTRA if nth == 1 else 0)}
    wrong = {request: len(counted[request]) for request, expected in pinned.items()
             if len(counted[request]) != expected}
    assert not wrong, f"queries {wrong}, pinned at {pinned}:\n" + "\n\n".join(
        f"{request}:\n" + "\n".join(sql[:160] for sql in counted[request]) for request in wrong)
