"""Provider endpoints are not tenant-controlled, and every provider call passes the outbound guard
(core/ssrf.py): resolve, pin to a checked address, refuse loopback, private and metadata addresses."""

import httpx
import pytest
from django.db import transaction

from cobrador.core.ssrf import guarded_transport
from cobrador.gateways.base import GatewayError
from cobrador.gateways.registry import gateway_for
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.gateways.conftest import CLIENT_TIMEOUT, charge_request, make_config

CARD = "cus_abc123:card_def456"


def test_a_base_url_in_stored_options_is_ignored_the_installation_setting_decides(pagarme, pagarme_config):
    # A row written before base_url was refused by the API: its value must not be where charging goes.
    with FakePagarme() as elsewhere:
        pagarme_config.options = {**pagarme_config.options, "base_url": elsewhere.url,
                                  "jwks_url": elsewhere.jwks_url}
        result = gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))
        assert result.status == "succeeded"
        assert elsewhere.requests == []
    assert pagarme.charges_for("pay_0001") == 1


def test_without_the_loopback_setting_a_provider_call_to_loopback_is_refused_before_sending(
        pagarme, pagarme_config, settings):
    settings.PROVIDER_ALLOW_PRIVATE = False
    with pytest.raises(GatewayError, match="connect"):
        gateway_for(pagarme_config).charge_card(charge_request(card_token=CARD))
    assert pagarme.requests == []  # the secret key never left


def test_kobana_calls_pass_the_guard_too(kobana, kobana_config, settings):
    settings.PROVIDER_ALLOW_PRIVATE = False
    with pytest.raises(GatewayError, match="connect"):
        gateway_for(kobana_config).issue_boleto(charge_request(method="bank_slip"))
    assert kobana.requests == []


def test_the_kobana_host_follows_the_organization_mode_when_no_installation_setting(db, settings):
    settings.KOBANA_BASE_URL = ""
    with transaction.atomic():
        live = make_org("Liveco", "live").organization
        test = make_org("Testco", "test").organization
    credentials = {"api_token": "t", "webhook_secret": "s"}
    options = {"base_url": "https://169.254.169.254", "timeout_seconds": CLIENT_TIMEOUT}
    assert gateway_for(make_config(live, "kobana", ["bank_slip"], credentials, options)).base_url == \
        "https://api.kobana.com.br"
    assert gateway_for(make_config(test, "kobana", ["bank_slip"], credentials, options)).base_url == \
        "https://api-sandbox.kobana.com.br"


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/", "http://localhost:9/", "http://169.254.169.254/",
                                 "http://10.0.0.1/", "http://[::1]:9/", "http://[::ffff:127.0.0.1]:9/"])
def test_the_guarded_transport_refuses_non_public_addresses_by_name_or_address(url):
    with httpx.Client(transport=guarded_transport(allow_private=lambda: False), timeout=1) as client:
        with pytest.raises(httpx.ConnectError) as raised:
            client.get(url)
    assert "resolves to a non-public address" in str(raised.value)


def test_nfeio_calls_pass_the_guard_too(settings):
    from cobrador.nfe.nfeio import HttpNfeioClient

    settings.PROVIDER_ALLOW_PRIVATE = False
    client = HttpNfeioClient(api_key="k", base_url="http://127.0.0.1:9")
    with pytest.raises(httpx.ConnectError, match="non-public"):
        client.http.get("/v1/companies")
