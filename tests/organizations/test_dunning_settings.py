import pytest

from cobrador.events.models import Event
from cobrador.organizations.models import DunningConfig

PATH = "/v1/organizations/settings/dunning"
CURL_BODY = {"max_retries": 5, "retry_interval_days": [1, 3, 5, 7, 14], "suspend_after_retries": True,
             "grace_period_days": 30, "auto_retry_enabled": True,
             "retry_payment_methods": ["pix", "bank_slip", "card"]}


def test_defaults(api):
    response = api.get(PATH)
    assert response.status_code == 200
    body = response.json()
    assert body["id"].startswith("dc_")
    assert body["max_retries"] == 5
    assert body["retry_interval_days"] == [1, 2, 3, 5, 7]
    assert body["suspend_after_retries"] is True
    assert body["grace_period_days"] == 30
    assert body["auto_retry_enabled"] is True
    assert body["retry_payment_methods"] == ["card", "bank_slip", "pix"]


def test_the_curl_from_the_issue(api):
    response = api.patch(PATH, CURL_BODY)
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["id"].startswith("dc_")
    assert body["max_retries"] == 5
    assert body["retry_interval_days"] == [1, 3, 5, 7, 14]
    assert body["grace_period_days"] == 30
    assert body["retry_payment_methods"] == ["pix", "bank_slip", "card"]
    assert api.get(PATH).json() == body
    event = Event.objects.get(organization=api.organization, type="dunning_config.updated")
    assert event.data["retry_interval_days"] == [1, 3, 5, 7, 14]
    assert set(event.data["changed_fields"]) == {"retry_interval_days", "retry_payment_methods"}


def test_partial_patch_changes_only_the_fields_sent(api):
    before = api.get(PATH).json()
    response = api.patch(PATH, {"grace_period_days": 10})
    assert response.status_code == 200
    after = response.json()
    assert after["grace_period_days"] == 10
    for field in ("max_retries", "retry_interval_days", "suspend_after_retries", "auto_retry_enabled",
                  "retry_payment_methods"):
        assert after[field] == before[field]


def test_a_patch_that_changes_nothing_emits_no_event(api):
    api.patch(PATH, {"max_retries": 5})
    assert not Event.objects.filter(type="dunning_config.updated").exists()


@pytest.mark.parametrize("body,field", [
    ({"max_retries": -1}, "max_retries"),
    ({"max_retries": 21}, "max_retries"),
    ({"max_retries": "5"}, "max_retries"),
    ({"max_retries": 2.5}, "max_retries"),
    ({"max_retries": True}, "max_retries"),
    ({"max_retries": None}, "max_retries"),
    ({"retry_interval_days": []}, "retry_interval_days"),
    ({"retry_interval_days": [0]}, "retry_interval_days.0"),
    ({"retry_interval_days": [1, 61]}, "retry_interval_days.1"),
    ({"retry_interval_days": [1, "2"]}, "retry_interval_days.1"),
    ({"retry_interval_days": [1.5]}, "retry_interval_days.0"),
    ({"retry_interval_days": 3}, "retry_interval_days"),
    ({"grace_period_days": -1}, "grace_period_days"),
    ({"grace_period_days": 366}, "grace_period_days"),
    ({"suspend_after_retries": "yes"}, "suspend_after_retries"),
    ({"auto_retry_enabled": 1}, "auto_retry_enabled"),
    ({"retry_payment_methods": []}, "retry_payment_methods"),
    ({"retry_payment_methods": ["card", "card"]}, "retry_payment_methods"),
    ({"retry_payment_methods": ["cash"]}, "retry_payment_methods.0"),
    ({"retry_payment_methods": "card"}, "retry_payment_methods"),
    ({"max_retry": 3}, "max_retry"),
])
def test_invalid_values_are_422_naming_the_field_and_change_nothing(api, body, field):
    before = api.get(PATH).json()
    response = api.patch(PATH, {**body, "grace_period_days": 7} if "grace_period_days" not in body else body)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["type"] == "validation_error"
    assert error["field"] == field
    assert field in [e["field"] for e in error["errors"]]
    assert api.get(PATH).json() == before
    assert DunningConfig.objects.get(organization=api.organization).grace_period_days == 30


def test_a_body_that_is_not_json_is_400(api):
    response = api.patch(PATH, raw=b'{"max_retries": 5')
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_json"


def test_each_organization_sees_its_own_config(api, other_api):
    api.patch(PATH, {"max_retries": 2})
    assert other_api.get(PATH).json()["max_retries"] == 5
    assert api.get(PATH).json()["id"] != other_api.get(PATH).json()["id"]
