"""Signing customers up through the API, as a SaaS company's backend does: account, card, subscription."""

from tests.conftest import ApiClient

ADDRESS = {"street": "Rua das Laranjeiras", "number": "1287", "neighborhood": "Vila Mariana", "city": "São Paulo",
           "state": "SP", "zipcode": "04015020", "country": "BR"}


def create_plan(api: ApiClient, *, amount=10000, name="Pro", **extra) -> dict:
    response = api.post("/v1/plans", {"name": name, "amount": amount, "currency": "BRL", "interval": "month",
                                      **extra})
    assert response.status_code == 201, response.content
    return response.json()


def create_account(api: ApiClient, *, name="Maria Souza", token="tok_sandbox_success") -> tuple[dict, dict | None]:
    response = api.post("/v1/billing_accounts", {"name": name, "email": "maria@example.test",
                                                 "document": "529.982.247-25", "address": ADDRESS})
    assert response.status_code == 201, response.content
    account = response.json()
    method = None
    if token:
        response = api.post(f"/v1/billing_accounts/{account['id']}/payment_methods", {
            "type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2040,
            "gateway_token": token})
        assert response.status_code == 201, response.content
        method = response.json()
    return account, method


def sign_up(api: ApiClient, plan: dict, *, token="tok_sandbox_success", **subscription) -> dict:
    """Account, card and subscription; returns the subscription as the 201 answered it."""
    account, _ = create_account(api, token=token)
    response = api.post("/v1/subscriptions", {"account": account["id"], "plan": plan["id"], **subscription})
    assert response.status_code == 201, response.content
    return response.json()
