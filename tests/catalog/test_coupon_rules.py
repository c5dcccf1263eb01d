"""The coupon rules invoicing relies on: the discount, which plans a coupon applies to, and redemption."""

import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import close_old_connections, connection, transaction

from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.services import coupon_applies_to, coupon_discount, redeem_coupon
from cobrador.core.errors import ValidationFailed
from cobrador.organizations.services import create_organization

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _org(name="Acme"):
    with transaction.atomic():
        return create_organization(name=name)


def _plan(organization, currency="BRL", amount=9900) -> Plan:
    return Plan.objects.create(organization=organization, name="Pro", amount=amount, currency=currency,
                               created_at=NOW)


def _coupon(organization, code="C", **fields) -> Coupon:
    if "amount_off" not in fields and "percent_off" not in fields:
        fields["percent_off"] = Decimal("10")
    return Coupon.objects.create(organization=organization, code=code, created_at=NOW, **fields)


@pytest.mark.parametrize("percent,amount,discount", [
    ("10", 9900, 990),
    ("12.5", 9900, 1238),     # 1237.5 rounds half-up
    ("33.33", 100, 33),       # 33.33
    ("50", 1, 1),             # 0.5 rounds half-up
    ("0.01", 49, 0),          # 0.0049
    ("0.01", 50, 0),          # 0.005 rounds to 0 at whole minor units
    ("100", 9900, 9900),
    ("10", 0, 0),
])
def test_percent_discount_rounds_half_up(db, percent, amount, discount):
    coupon = _coupon(_org(), percent_off=Decimal(percent))
    assert coupon_discount(coupon, amount) == discount


@pytest.mark.parametrize("amount_off,amount,discount", [(1000, 9900, 1000), (1000, 999, 999), (1000, 0, 0)])
def test_fixed_discount_is_capped_at_the_amount(db, amount_off, amount, discount):
    coupon = _coupon(_org(), amount_off=amount_off, currency="BRL", percent_off=None)
    assert coupon_discount(coupon, amount) == discount


def test_applies_to_every_plan_without_restriction_or_to_the_listed_ones(db):
    organization = _org()
    pro, basic = _plan(organization), _plan(organization)
    open_coupon = _coupon(organization, code="OPEN")
    only_pro = _coupon(organization, code="PRO")
    only_pro.plans.set([pro])
    assert coupon_applies_to(open_coupon, pro) and coupon_applies_to(open_coupon, basic)
    assert coupon_applies_to(only_pro, pro) and not coupon_applies_to(only_pro, basic)
    prefetched = Coupon.objects.prefetch_related("plans").get(pk=only_pro.pk)
    assert coupon_applies_to(prefetched, pro) and not coupon_applies_to(prefetched, basic)


def test_a_fixed_amount_applies_only_in_its_currency(db):
    organization = _org()
    fixed = _coupon(organization, amount_off=500, currency="BRL", percent_off=None)
    assert coupon_applies_to(fixed, _plan(organization, "BRL"))
    assert not coupon_applies_to(fixed, _plan(organization, "USD"))
    assert coupon_applies_to(_coupon(organization, code="P"), _plan(organization, "USD"))


def test_redeem_counts_and_stops_at_max_redemptions(db):
    organization = _org()
    plan = _plan(organization)
    coupon = _coupon(organization, max_redemptions=2)
    assert redeem_coupon(coupon=coupon, plan=plan, as_of=NOW).times_redeemed == 1
    assert redeem_coupon(coupon=coupon, plan=plan, as_of=NOW).times_redeemed == 2
    with pytest.raises(ValidationFailed) as failure:
        redeem_coupon(coupon=coupon, plan=plan, as_of=NOW)
    assert failure.value.field == "coupon" and failure.value.status == 422
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 2


@pytest.mark.parametrize("fields,restricted,message", [
    ({"active": False}, False, "not active"),
    ({"expires_at": NOW}, False, "expired"),
    ({"expires_at": NOW - timedelta(days=1)}, False, "expired"),
    ({}, True, "does not apply"),
])
def test_redeem_refuses_and_counts_nothing(db, fields, restricted, message):
    organization = _org()
    plan, other_plan = _plan(organization), _plan(organization)
    coupon = _coupon(organization, **fields)
    if restricted:
        coupon.plans.set([other_plan])
    with pytest.raises(ValidationFailed, match=message) as failure:
        redeem_coupon(coupon=coupon, plan=plan, as_of=NOW)
    assert failure.value.field == "coupon"
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 0


def test_redeem_before_expiry_works(db):
    organization = _org()
    coupon = _coupon(organization, expires_at=NOW + timedelta(seconds=1))
    assert redeem_coupon(coupon=coupon, plan=_plan(organization), as_of=NOW).times_redeemed == 1


def test_a_coupon_cannot_be_redeemed_for_another_organizations_plan(db):
    coupon = _coupon(_org("Acme"))
    with pytest.raises(ValidationFailed):
        redeem_coupon(coupon=coupon, plan=_plan(_org("Globex")), as_of=NOW)


def test_a_stale_coupon_object_still_cannot_exceed_max_redemptions(db):
    """The limit is enforced by the UPDATE, not by the (maybe stale) object in memory."""
    organization = _org()
    plan = _plan(organization)
    coupon = _coupon(organization, max_redemptions=1)
    stale = Coupon.objects.get(pk=coupon.pk)
    redeem_coupon(coupon=coupon, plan=plan, as_of=NOW)
    with pytest.raises(ValidationFailed, match="maximum"):
        redeem_coupon(coupon=stale, plan=plan, as_of=NOW)


@pytest.mark.django_db(transaction=True)
def test_concurrent_redemptions_never_exceed_max_redemptions():
    organization = _org()
    plan = _plan(organization)
    coupon = _coupon(organization, max_redemptions=3)
    results, barrier = [], threading.Barrier(8)

    def redeem():
        try:
            barrier.wait()
            with transaction.atomic():
                redeem_coupon(coupon=Coupon.objects.get(pk=coupon.pk), plan=plan, as_of=NOW)
            results.append("ok")
        except ValidationFailed:
            results.append("refused")
        finally:
            close_old_connections()
            connection.close()

    threads = [threading.Thread(target=redeem) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == ["ok"] * 3 + ["refused"] * 5
    assert Coupon.objects.get(pk=coupon.pk).times_redeemed == 3
