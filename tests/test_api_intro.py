import pytest
from django.test import Client


@pytest.mark.django_db
def test_the_api_docs_open_with_getting_started_and_the_sandbox_test_cards():
    description = Client().get("/v1/openapi.json").json()["info"]["description"]

    assert description.startswith("\ncobrador's REST API.")
    assert "## Getting started" in description
    assert "* `tok_sandbox_decline`: failed, soft decline, generic_decline" in description
    assert "X-Kobana-Signature: sha256=<hex" in description
