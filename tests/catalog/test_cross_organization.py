"""Every catalog route answers another organization's ids with 404 and changes nothing."""

import pytest

from cobrador.catalog.models import Coupon, Plan
from tests.catalog.test_coupons_api import create_coupon
from tests.catalog.test_plans_api import create_plan

ROUTES = [
    ("get", "/v1/plans/{plan}", None),
    ("patch", "/v1/plans/{plan}", {"name": "Hijacked"}),
    ("get", "/v1/coupons/{coupon}", None),
    ("patch", "/v1/coupons/{coupon}", {"active": False}),
]


def _snapshot():
    return list(Plan.objects.order_by("pk").values()), list(Coupon.objects.order_by("pk").values())


@pytest.mark.parametrize("method,template,body", ROUTES)
def test_another_organizations_ids_are_404(api, other_api, clock, method, template, body):
    plan = create_plan(api)
    coupon = create_coupon(api, code="MINE", percent_off=10, plans=[plan["id"]])
    before = _snapshot()
    call = getattr(other_api, method)
    path = template.format(plan=plan["id"], coupon=coupon["id"])
    response = call(path, body) if body is not None else call(path)
    assert response.status_code == 404, response.content
    assert response.json()["error"]["type"] == "not_found"
    assert _snapshot() == before


def test_lists_show_only_the_callers_catalog(api, other_api, clock):
    plan = create_plan(api)
    coupon = create_coupon(api, code="MINE", percent_off=10)
    assert [p["id"] for p in api.get("/v1/plans").json()["data"]] == [plan["id"]]
    assert other_api.get("/v1/plans").json()["data"] == []
    assert [c["id"] for c in api.get("/v1/coupons").json()["data"]] == [coupon["id"]]
    assert other_api.get("/v1/coupons").json()["data"] == []
    assert other_api.get("/v1/coupons", params={"code": "MINE"}).json()["data"] == []
