import pytest

from cobrador.catalog.models import Plan

PLAN = {"name": "Pro", "amount": 9900, "currency": "BRL", "interval": "month", "interval_count": 1,
        "trial_days": 14}


def create_plan(api, **overrides) -> dict:
    response = api.post("/v1/plans", {**PLAN, **overrides})
    assert response.status_code == 201, response.content
    return response.json()


def test_create_and_retrieve(api, clock):
    plan = create_plan(api)
    assert plan["id"].startswith("plan_")
    assert plan == {"id": plan["id"], "object": "plan", "name": "Pro", "amount": 9900, "currency": "BRL",
                    "interval": "month", "interval_count": 1, "trial_days": 14, "active": True,
                    "created_at": "2026-03-01T12:00:00Z"}
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan


def test_defaults(api, clock):
    response = api.post("/v1/plans", {"name": "Basic", "amount": 0})
    assert response.status_code == 201
    body = response.json()
    assert (body["currency"], body["interval"], body["interval_count"], body["trial_days"]) == ("BRL", "month", 1, 0)


def test_yearly_plan_with_interval_count(api, clock):
    plan = create_plan(api, interval="year", interval_count=3)
    assert Plan.objects.get(public_id=plan["id"]).months_per_period == 36


@pytest.mark.parametrize("overrides,field", [
    ({"amount": -1}, "amount"),
    ({"amount": 99.9}, "amount"),
    ({"amount": "9900"}, "amount"),
    ({"currency": "BTC"}, "currency"),
    ({"interval": "week"}, "interval"),
    ({"interval_count": 0}, "interval_count"),
    ({"interval": "year", "interval_count": 4}, "interval_count"),   # more than 3 years
    ({"trial_days": -1}, "trial_days"),
    ({"name": ""}, "name"),
    ({"name": "  "}, "name"),
    ({"active": "yes"}, "active"),
    ({"quantity": 2}, "quantity"),
])
def test_bad_plans_are_422_naming_the_field_and_create_nothing(api, clock, overrides, field):
    response = api.post("/v1/plans", {**PLAN, **overrides})
    assert response.status_code == 422, response.content
    assert response.json()["error"]["field"] == field
    assert not Plan.objects.exists()


def test_patch_name_active_and_trial_days(api, clock):
    plan = create_plan(api)
    response = api.patch(f"/v1/plans/{plan['id']}", {"name": "Pro 2026", "active": False, "trial_days": 7})
    assert response.status_code == 200, response.content
    assert response.json() == {**plan, "name": "Pro 2026", "active": False, "trial_days": 7}


@pytest.mark.parametrize("field,value", [("amount", 1), ("currency", "USD"), ("interval", "year"),
                                         ("interval_count", 2)])
def test_the_price_is_immutable(api, clock, field, value):
    plan = create_plan(api)
    response = api.patch(f"/v1/plans/{plan['id']}", {"name": "Cheaper", field: value})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan


def test_the_openapi_description_says_the_price_is_immutable(api):
    spec = api.get("/v1/openapi.json").json()
    assert "immutable" in spec["paths"]["/v1/plans/{plan_id}"]["patch"]["description"]


@pytest.mark.parametrize("body,field", [({"name": None}, "name"), ({"trial_days": 731}, "trial_days"),
                                        ({"active": None}, "active")])
def test_bad_patch_changes_nothing(api, clock, body, field):
    plan = create_plan(api)
    response = api.patch(f"/v1/plans/{plan['id']}", {"trial_days": 3, **body})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    assert api.get(f"/v1/plans/{plan['id']}").json() == plan


def test_list_filters_by_active_and_paginates(api, clock):
    a = create_plan(api, name="A")
    b = create_plan(api, name="B", active=False)
    c = create_plan(api, name="C")
    assert [p["id"] for p in api.get("/v1/plans").json()["data"]] == [c["id"], b["id"], a["id"]]
    assert [p["id"] for p in api.get("/v1/plans", params={"active": "true"}).json()["data"]] == [c["id"], a["id"]]
    assert [p["id"] for p in api.get("/v1/plans", params={"active": "false"}).json()["data"]] == [b["id"]]
    page = api.get("/v1/plans", params={"limit": 1}).json()
    assert page["has_more"] and [p["id"] for p in page["data"]] == [c["id"]]
    bad = api.get("/v1/plans", params={"limit": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "limit"
