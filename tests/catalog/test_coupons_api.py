from datetime import UTC, datetime

import pytest

from cobrador.catalog.models import Coupon
from tests.catalog.test_plans_api import create_plan


def create_coupon(api, **body) -> dict:
    response = api.post("/v1/coupons", body)
    assert response.status_code == 201, response.content
    return response.json()


def test_percent_coupon_restricted_to_plans(api, clock):
    pro, basic = create_plan(api, name="Pro"), create_plan(api, name="Basic")
    coupon = create_coupon(api, code="LAUNCH", name="Launch", percent_off=12.5, duration="repeating",
                           duration_in_periods=3, expires_at="2026-06-01T00:00:00Z", max_redemptions=100,
                           plans=[pro["id"], basic["id"], pro["id"]])
    assert coupon["id"].startswith("coupon_")
    assert coupon["percent_off"] == 12.5 and coupon["amount_off"] is None and coupon["currency"] is None
    assert coupon["duration"] == "repeating" and coupon["duration_in_periods"] == 3
    assert coupon["expires_at"] == "2026-06-01T00:00:00Z"
    assert coupon["max_redemptions"] == 100 and coupon["times_redeemed"] == 0
    assert sorted(coupon["plans"]) == sorted([pro["id"], basic["id"]])
    assert coupon["active"] is True and coupon["valid"] is True
    assert api.get(f"/v1/coupons/{coupon['id']}").json() == coupon


def test_fixed_amount_coupon_forever(api, clock):
    coupon = create_coupon(api, code="MINUS10", amount_off=1000, currency="BRL", duration="forever")
    assert (coupon["amount_off"], coupon["currency"], coupon["percent_off"]) == (1000, "BRL", None)
    assert coupon["plans"] == [] and coupon["duration_in_periods"] is None


def test_valid_turns_false_after_expiry(api, clock):
    coupon = create_coupon(api, code="SOON", percent_off=5, expires_at="2026-03-02T00:00:00Z")
    assert coupon["valid"] is True
    clock.set(datetime(2026, 3, 2, tzinfo=UTC))
    assert api.get(f"/v1/coupons/{coupon['id']}").json()["valid"] is False


@pytest.mark.parametrize("body,field", [
    ({"percent_off": 10, "amount_off": 100, "currency": "BRL"}, "amount_off"),
    ({}, "percent_off"),
    ({"percent_off": 0}, "percent_off"),
    ({"percent_off": -5}, "percent_off"),
    ({"percent_off": 100.01}, "percent_off"),
    ({"percent_off": 10.123}, "percent_off"),
    ({"percent_off": "10"}, "percent_off"),
    ({"percent_off": 10, "currency": "BRL"}, "currency"),
    ({"amount_off": 0, "currency": "BRL"}, "amount_off"),
    ({"amount_off": 100}, "currency"),
    ({"amount_off": 100, "currency": "ARS"}, "currency"),
    ({"amount_off": 1.5, "currency": "BRL"}, "amount_off"),
    ({"percent_off": 10, "duration": "repeating"}, "duration_in_periods"),
    ({"percent_off": 10, "duration": "repeating", "duration_in_periods": 0}, "duration_in_periods"),
    ({"percent_off": 10, "duration": "once", "duration_in_periods": 2}, "duration_in_periods"),
    ({"percent_off": 10, "duration": "forever", "duration_in_periods": 2}, "duration_in_periods"),
    ({"percent_off": 10, "duration": "weekly"}, "duration"),
    ({"percent_off": 10, "expires_at": "2026-03-01T12:00:00Z"}, "expires_at"),
    ({"percent_off": 10, "expires_at": "2025-01-01T00:00:00Z"}, "expires_at"),
    ({"percent_off": 10, "expires_at": "2026-06-01"}, "expires_at"),
    ({"percent_off": 10, "max_redemptions": 0}, "max_redemptions"),
    ({"percent_off": 10, "plans": ["plan_doesnotexist"]}, "plans"),
    ({"percent_off": 10, "plans": "plan_x"}, "plans"),
    ({"percent_off": 10, "code": ""}, "code"),
    ({"percent_off": 10, "code": "HAS SPACE"}, "code"),
    ({"percent_off": 10, "times_redeemed": 5}, "times_redeemed"),
])
def test_bad_coupons_are_422_naming_the_field_and_create_nothing(api, clock, body, field):
    response = api.post("/v1/coupons", {"code": "X", **body})
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == field, error
    assert not Coupon.objects.exists()


def test_a_plan_of_another_organization_is_unknown(api, other_api, clock):
    theirs = create_plan(other_api)
    response = api.post("/v1/coupons", {"code": "X", "percent_off": 10, "plans": [theirs["id"]]})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "plans"
    assert not Coupon.objects.exists()


def test_codes_are_unique_per_organization(api, other_api, clock):
    create_coupon(api, code="WELCOME", percent_off=10)
    again = api.post("/v1/coupons", {"code": "WELCOME", "amount_off": 5, "currency": "BRL"})
    assert again.status_code == 409 and again.json()["error"]["field"] == "code"
    assert again.json()["error"]["type"] == "coupon_code_taken"
    assert Coupon.objects.count() == 1
    create_coupon(other_api, code="WELCOME", percent_off=10)  # another organization may use it


def test_patch_name_and_active_only(api, clock):
    coupon = create_coupon(api, code="C", percent_off=10)
    response = api.patch(f"/v1/coupons/{coupon['id']}", {"name": "Renamed", "active": False})
    assert response.status_code == 200
    assert response.json() == {**coupon, "name": "Renamed", "active": False, "valid": False}
    bad = api.patch(f"/v1/coupons/{coupon['id']}", {"name": "Again", "percent_off": 50})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "percent_off"
    assert api.get(f"/v1/coupons/{coupon['id']}").json()["name"] == "Renamed"


def test_list_filters(api, clock):
    a = create_coupon(api, code="A", percent_off=10)
    b = create_coupon(api, code="B", percent_off=10)
    api.patch(f"/v1/coupons/{b['id']}", {"active": False})
    assert [c["id"] for c in api.get("/v1/coupons").json()["data"]] == [b["id"], a["id"]]
    assert [c["id"] for c in api.get("/v1/coupons", params={"active": "true"}).json()["data"]] == [a["id"]]
    assert [c["id"] for c in api.get("/v1/coupons", params={"code": "B"}).json()["data"]] == [b["id"]]
