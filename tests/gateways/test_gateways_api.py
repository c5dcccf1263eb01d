"""/v1/gateways: per-method provider configuration with write-only, encrypted credentials."""

import logging
import sqlite3
import subprocess
from contextlib import closing

import pytest
from django.db import connection

from cobrador.core.errors import Conflict
from cobrador.gateways.models import GatewayConfig
from cobrador.gateways.registry import config_for_method, gateway_for
from tests.factories import make_org

SECRET = "sk_test_Sup3rS3cretPagarmeKey"
LIVE_SECRET = "sk_live_Sup3rS3cretLiveKey"
KOBANA_TOKEN = "kobana-token-V3ryS3cret"
KOBANA_HOOK_SECRET = "kobana-webhook-V3ryS3cret"


@pytest.fixture
def test_api(db):
    return make_org("Testco", "test")


def pagarme_body(secret=SECRET, methods=("card",), **extra):
    return {"provider": "pagarme", "methods": list(methods), "credentials": {"secret_key": secret},
            "options": {"timeout_seconds": 5}, **extra}


def test_create_answers_the_callback_url_and_never_the_credentials(test_api, settings):
    response = test_api.post("/v1/gateways", pagarme_body())
    assert response.status_code == 201, response.content
    data = response.json()
    config = GatewayConfig.objects.get(public_id=data["id"])
    assert data["callback_url"] == f"{settings.PUBLIC_URL}/v1/callbacks/pagarme/{config.callback_token}"
    assert data["credentials_set"] == ["secret_key"] and "credentials" not in data
    assert SECRET not in response.content.decode()
    assert config.credentials == {"secret_key": SECRET}  # readable by the adapters

    for answer in (test_api.get(f"/v1/gateways/{data['id']}"), test_api.get("/v1/gateways")):
        assert answer.status_code == 200 and SECRET not in answer.content.decode()


def test_one_active_configuration_per_method(test_api):
    first = test_api.post("/v1/gateways", pagarme_body(methods=["card", "pix"])).json()
    response = test_api.post("/v1/gateways", {
        "provider": "kobana", "methods": ["bank_slip", "pix"],
        "credentials": {"api_token": KOBANA_TOKEN, "webhook_secret": KOBANA_HOOK_SECRET, "pix_account_uid": "u"}})
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "gateway_method_taken"
    assert response.json()["error"]["field"] == "methods" and "pix" in response.json()["error"]["message"]
    assert GatewayConfig.objects.filter(provider="kobana").count() == 0

    # Free the method, then it works; re-activating the first one now conflicts.
    assert test_api.patch(f"/v1/gateways/{first['id']}", {"methods": ["card"]}).status_code == 200
    kobana = test_api.post("/v1/gateways", {
        "provider": "kobana", "methods": ["bank_slip", "pix"],
        "credentials": {"api_token": KOBANA_TOKEN, "webhook_secret": KOBANA_HOOK_SECRET, "pix_account_uid": "u"}})
    assert kobana.status_code == 201
    assert test_api.patch(f"/v1/gateways/{first['id']}", {"methods": ["card", "pix"]}).status_code == 409
    assert config_for_method(test_api.organization, "pix").public_id == kobana.json()["id"]
    assert config_for_method(test_api.organization, "card").public_id == first["id"]


@pytest.mark.parametrize("body, field", [
    ({"provider": "pagarme", "methods": ["card"], "credentials": {}}, "credentials.secret_key"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": LIVE_SECRET}},
     "credentials.secret_key"),  # a live key in a test-mode organization
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET, "extra": "x"}},
     "credentials.extra"),
    ({"provider": "kobana", "methods": ["card"], "credentials": {"api_token": "t", "webhook_secret": "s"}},
     "methods"),
    ({"provider": "kobana", "methods": ["pix"], "credentials": {"api_token": "t", "webhook_secret": "s"}},
     "credentials.pix_account_uid"),
    ({"provider": "pagarme", "methods": ["card", "card"], "credentials": {"secret_key": SECRET}}, "methods"),
    ({"provider": "pagarme", "methods": [], "credentials": {"secret_key": SECRET}}, "methods"),
    ({"provider": "stripe", "methods": ["card"]}, "provider"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET},
      "options": {"base_url": "ftp://x"}}, "options.base_url"),
    # Provider hosts are not tenant input (SSRF): the metadata address, loopback, or even the real host.
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET},
      "options": {"base_url": "https://169.254.169.254/latest/meta-data"}}, "options.base_url"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET},
      "options": {"base_url": "https://api.pagar.me/core/v5"}}, "options.base_url"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET},
      "options": {"jwks_url": "https://127.0.0.1:9555/jwks.json"}}, "options.jwks_url"),
    ({"provider": "kobana", "methods": ["bank_slip"], "credentials": {"api_token": "t", "webhook_secret": "s"},
      "options": {"base_url": "https://127.0.0.1:9555"}}, "options.base_url"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET},
      "options": {"colour": "x"}}, "options.colour"),
    ({"provider": "pagarme", "methods": ["card"], "credentials": {"secret_key": SECRET}, "nope": 1}, "nope"),
])
def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(test_api, body, field):
    response = test_api.post("/v1/gateways", body)
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not GatewayConfig.objects.filter(is_fallback=False).exists()


def test_patch_merges_credentials_replaces_options_and_delete_hides(test_api):
    created = test_api.post("/v1/gateways", pagarme_body(methods=["card", "bank_slip"])).json()
    response = test_api.patch(f"/v1/gateways/{created['id']}",
                              {"credentials": {"secret_key": "sk_test_rotated"}, "options": {"timeout_seconds": 5}})
    assert response.status_code == 200
    assert response.json()["options"] == {"timeout_seconds": 5}
    config = GatewayConfig.objects.get(public_id=created["id"])
    assert config.credentials == {"secret_key": "sk_test_rotated"}
    assert test_api.patch(f"/v1/gateways/{created['id']}", {"methods": None}).status_code == 422

    assert test_api.delete(f"/v1/gateways/{created['id']}").status_code == 204
    assert test_api.get(f"/v1/gateways/{created['id']}").status_code == 404
    assert created["id"] not in [g["id"] for g in test_api.get("/v1/gateways").json()["data"]]
    # It stays (inactive) for its payments' late callbacks; the method falls back to the sandbox.
    assert GatewayConfig.objects.get(public_id=created["id"]).active is False
    assert config_for_method(test_api.organization, "card").is_fallback


def test_other_organizations_configurations_are_404(test_api, other_api):
    created = test_api.post("/v1/gateways", pagarme_body()).json()
    path = f"/v1/gateways/{created['id']}"
    assert other_api.get(path).status_code == 404
    assert other_api.patch(path, {"active": False}).status_code == 404
    assert other_api.delete(path).status_code == 404
    assert created["id"] not in [g["id"] for g in other_api.get("/v1/gateways").json()["data"]]
    assert GatewayConfig.objects.get(public_id=created["id"]).active


def test_test_mode_falls_back_to_one_sandbox_and_live_mode_gets_a_clear_error(test_api, api):
    first = config_for_method(test_api.organization, "card")
    assert first.provider == "sandbox" and first.is_fallback
    assert config_for_method(test_api.organization, "pix").pk == first.pk
    listed = test_api.get("/v1/gateways").json()["data"]
    assert [(g["provider"], g["fallback"], g["methods"]) for g in listed] == [
        ("sandbox", True, ["card", "bank_slip", "pix"])]
    assert test_api.patch(f"/v1/gateways/{first.public_id}", {"active": False}).status_code == 409
    test_api.post("/v1/gateways", pagarme_body(methods=["card"]))
    fallback = next(g for g in test_api.get("/v1/gateways").json()["data"] if g["fallback"])
    assert fallback["methods"] == ["bank_slip", "pix"]

    with pytest.raises(Conflict, match="bank_slip"):
        config_for_method(api.organization, "bank_slip")
    response = api.post("/v1/gateways", {"provider": "sandbox", "methods": ["card"]})
    assert response.status_code == 422 and response.json()["error"]["field"] == "provider"
    assert api.post("/v1/gateways", pagarme_body(secret=LIVE_SECRET)).status_code == 201
    assert config_for_method(api.organization, "card").provider == "pagarme"


# --- no credential in plaintext in a database dump or in the logs ------------------------------


def _database_dump() -> str:
    """What an operator's backup holds: iterdump of the SQLite file, or pg_dump of the database."""
    if connection.vendor == "sqlite":
        name = str(connection.settings_dict["NAME"])
        if name == ":memory:" or name.startswith("file:"):
            return "\n".join(connection.connection.iterdump())
        with closing(sqlite3.connect(name)) as dump_connection:
            return "\n".join(dump_connection.iterdump())
    settings_dict = connection.settings_dict
    command = ["pg_dump", "--data-only", "-h", settings_dict.get("HOST") or "127.0.0.1",
               "-p", str(settings_dict.get("PORT") or 5432), "-U", settings_dict.get("USER") or "postgres",
               settings_dict["NAME"]]
    env = {"PGPASSWORD": settings_dict.get("PASSWORD") or "", "PATH": "/usr/bin:/bin:/usr/lib/postgresql/bin"}
    return subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout


@pytest.mark.django_db(transaction=True)
def test_credentials_are_neither_in_a_database_dump_nor_in_the_logs(caplog, pagarme, kobana):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")
    caplog.set_level(logging.DEBUG, logger="httpcore")
    test_api = make_org("Dumpco", "test")
    pagarme.secret_key = SECRET
    kobana.api_token, kobana.webhook_secret = KOBANA_TOKEN, KOBANA_HOOK_SECRET
    created = test_api.post("/v1/gateways", pagarme_body(methods=["card"]))
    assert created.status_code == 201
    kobana_created = test_api.post("/v1/gateways", {
        "provider": "kobana", "methods": ["bank_slip", "pix"],
        "credentials": {"api_token": KOBANA_TOKEN, "webhook_secret": KOBANA_HOOK_SECRET,
                        "pix_account_uid": kobana.pix_account_uid}})
    assert kobana_created.status_code == 201
    assert test_api.patch(f"/v1/gateways/{created.json()['id']}",
                          {"credentials": {"secret_key": SECRET}}).status_code == 200
    # Use them, including failures that get logged.
    from tests.gateways.conftest import charge_request
    card_gateway = gateway_for(config_for_method(test_api.organization, "card"))
    assert card_gateway.charge_card(charge_request("pay_d1", card_token="cus_a:card_b")).status == "succeeded"
    pagarme.fail_next("500_after_charge")
    assert card_gateway.charge_card(charge_request("pay_d2", card_token="cus_a:card_b")).status == "unknown"
    slip_gateway = gateway_for(config_for_method(test_api.organization, "bank_slip"))
    kobana.fail_next("500")
    assert slip_gateway.issue_boleto(charge_request("pay_d3", method="bank_slip")).status == "unknown"
    assert slip_gateway.issue_boleto(charge_request("pay_d4", method="bank_slip")).status == "pending"

    dump = _database_dump()
    config = GatewayConfig.objects.get(public_id=created.json()["id"])
    assert config.callback_token in dump  # the dump does hold the rows' plaintext columns
    for secret in (SECRET, KOBANA_TOKEN, KOBANA_HOOK_SECRET):
        assert secret not in dump
        assert secret not in caplog.text
    assert any("pagarme" in r.getMessage() for r in caplog.records)  # the 500 was logged
