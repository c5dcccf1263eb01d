import pytest

ACCOUNT = {
    "name": "Maria Souza",
    "email": "maria@example.com",
    "document": "529.982.247-25",
    "address": {"street": "Av. Paulista", "number": "1000", "complement": "cj 12", "neighborhood": "Bela Vista",
                "city": "São Paulo", "state": "SP", "zipcode": "01310-100"},
    "locale": "pt-BR",
    "metadata": {"crm_id": "42"},
}
CARD = {"type": "card", "brand": "visa", "last4": "4242", "exp_month": 12, "exp_year": 2030,
        "gateway_token": "card_tok_1"}


def create_account(api, **overrides) -> dict:
    response = api.post("/v1/billing_accounts", {**ACCOUNT, **overrides})
    assert response.status_code == 201, response.content
    return response.json()


def attach(api, account_id: str, body: dict) -> dict:
    response = api.post(f"/v1/billing_accounts/{account_id}/payment_methods", body)
    assert response.status_code == 201, response.content
    return response.json()


@pytest.fixture
def account(api, clock) -> dict:
    return create_account(api)
