import pytest

from cobrador.customers.models import PaymentMethod
from cobrador.events.models import Event
from tests.customers.conftest import CARD, attach, create_account


def _path(account_id, pm_id=""):
    return f"/v1/billing_accounts/{account_id}/payment_methods" + (f"/{pm_id}" if pm_id else "")


def _default_of(api, account_id):
    return api.get(f"/v1/billing_accounts/{account_id}").json()["default_payment_method_id"]


def test_the_first_payment_method_becomes_the_default(api, account):
    card = attach(api, account["id"], CARD)
    assert card["id"].startswith("pm_")
    assert card["object"] == "payment_method"
    assert card["account_id"] == account["id"]
    assert (card["brand"], card["last4"], card["exp_month"], card["exp_year"]) == ("visa", "4242", 12, 2030)
    assert card["is_default"] is True and card["status"] == "active"
    assert "gateway_token" not in card  # write-only
    assert _default_of(api, account["id"]) == card["id"]

    pix = attach(api, account["id"], {"type": "pix"})
    assert pix["is_default"] is False
    assert pix["brand"] is None and pix["last4"] is None
    assert _default_of(api, account["id"]) == card["id"]


def test_the_gateway_token_is_stored_but_never_returned(api, account):
    card = attach(api, account["id"], CARD)
    assert PaymentMethod.objects.get(public_id=card["id"]).gateway_token == "card_tok_1"
    listed = api.get(_path(account["id"])).json()["data"][0]
    assert "gateway_token" not in listed and "card_tok_1" not in str(listed)
    event = Event.objects.get(type="payment_method.attached")
    assert "card_tok_1" not in str(event.data)


def test_set_default_on_attach_replaces_the_old_default(api, account):
    first = attach(api, account["id"], CARD)
    second = attach(api, account["id"], {**CARD, "gateway_token": "card_tok_2", "last4": "1111",
                                         "set_default": True})
    assert second["is_default"] is True
    assert api.get(_path(account["id"], first["id"])).json()["is_default"] is False
    assert PaymentMethod.objects.filter(is_default=True).count() == 1
    assert _default_of(api, account["id"]) == second["id"]


def test_patch_makes_another_method_the_default(api, account):
    card = attach(api, account["id"], CARD)
    slip = attach(api, account["id"], {"type": "bank_slip"})
    Event.objects.all().delete()
    response = api.patch(_path(account["id"], slip["id"]), {"is_default": True})
    assert response.status_code == 200, response.content
    assert response.json()["is_default"] is True
    assert api.get(_path(account["id"], card["id"])).json()["is_default"] is False
    event = Event.objects.get(type="billing_account.updated")
    assert event.data["default_payment_method_id"] == slip["id"]
    assert event.data["changed_fields"] == ["default_payment_method_id"]

    # Making the default the default again changes nothing.
    Event.objects.all().delete()
    assert api.patch(_path(account["id"], slip["id"]), {"is_default": True}).status_code == 200
    assert not Event.objects.exists()


@pytest.mark.parametrize("body,field", [({"is_default": False}, "is_default"), ({}, "is_default"),
                                        ({"last4": "1234"}, "last4")])
def test_patch_only_sets_the_default(api, account, body, field):
    card = attach(api, account["id"], CARD)
    response = api.patch(_path(account["id"], card["id"]), body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["error"]["errors"]]


def test_detach_emits_detached_and_promotes_the_newest_remaining_method(api, account, clock):
    card = attach(api, account["id"], CARD)
    pix = attach(api, account["id"], {"type": "pix"})
    slip = attach(api, account["id"], {"type": "bank_slip"})
    response = api.delete(_path(account["id"], card["id"]))
    assert response.status_code == 200, response.content
    detached = response.json()
    assert detached["status"] == "detached" and detached["is_default"] is False
    assert detached["detached_at"] == "2026-03-01T12:00:00Z"
    event = Event.objects.get(type="payment_method.detached")
    assert event.data == detached
    assert _default_of(api, account["id"]) == slip["id"]

    active = api.get(_path(account["id"])).json()["data"]
    assert [m["id"] for m in active] == [slip["id"], pix["id"]]
    gone = api.get(_path(account["id"]), params={"status": "detached"}).json()["data"]
    assert [m["id"] for m in gone] == [card["id"]]


def test_detaching_the_last_method_leaves_no_default_and_detaching_twice_changes_nothing(api, account):
    card = attach(api, account["id"], CARD)
    assert api.delete(_path(account["id"], card["id"])).status_code == 200
    assert _default_of(api, account["id"]) is None
    again = api.delete(_path(account["id"], card["id"]))
    assert again.status_code == 200 and again.json()["status"] == "detached"
    assert Event.objects.filter(type="payment_method.detached").count() == 1
    # A new method after that becomes the default again.
    assert attach(api, account["id"], {"type": "pix"})["is_default"] is True


def test_a_detached_method_cannot_become_the_default(api, account):
    card = attach(api, account["id"], CARD)
    attach(api, account["id"], {"type": "pix"})
    api.delete(_path(account["id"], card["id"]))
    response = api.patch(_path(account["id"], card["id"]), {"is_default": True})
    assert response.status_code == 409
    assert response.json()["error"]["type"] == "payment_method_detached"
    assert response.json()["error"]["field"] == "is_default"


def test_attach_emits_attached_and_account_updated_when_the_default_changes(api, account):
    card = attach(api, account["id"], CARD)
    attached = Event.objects.get(type="payment_method.attached")
    assert attached.data == card
    updated = Event.objects.get(type="billing_account.updated")
    assert updated.data["default_payment_method_id"] == card["id"]
    attach(api, account["id"], {"type": "pix"})  # not the default: the account does not change
    assert Event.objects.filter(type="billing_account.updated").count() == 1
    assert Event.objects.filter(type="payment_method.attached").count() == 2


def test_duplicates_are_conflicts(api, account):
    attach(api, account["id"], CARD)
    attach(api, account["id"], {"type": "pix"})
    same_card = api.post(_path(account["id"]), CARD)
    assert same_card.status_code == 409 and same_card.json()["error"]["field"] == "gateway_token"
    assert same_card.json()["error"]["type"] == "payment_method_already_attached"
    second_pix = api.post(_path(account["id"]), {"type": "pix"})
    assert second_pix.status_code == 409 and second_pix.json()["error"]["field"] == "type"
    assert PaymentMethod.objects.count() == 2


@pytest.mark.parametrize("body,field", [
    ({**CARD, "number": "4242424242424242"}, "number"),
    ({**CARD, "cvv": "123"}, "cvv"),
    ({**CARD, "last4": "424"}, "last4"),
    ({**CARD, "last4": "42424"}, "last4"),
    ({**CARD, "last4": "4242424242424242"}, "last4"),
    ({**CARD, "last4": "42a2"}, "last4"),
    ({**CARD, "last4": 4242}, "last4"),
    ({**CARD, "exp_month": 0}, "exp_month"),
    ({**CARD, "exp_month": 13}, "exp_month"),
    ({**CARD, "exp_month": "12"}, "exp_month"),
    ({**CARD, "exp_year": 30}, "exp_year"),
    ({**CARD, "exp_year": 20300}, "exp_year"),
    ({**CARD, "exp_year": 2025}, "exp_year"),            # expired (the clock is in March 2026)
    ({**CARD, "exp_year": 2026, "exp_month": 2}, "exp_month"),
    ({**CARD, "gateway_token": "4242424242424242"}, "gateway_token"),
    ({**CARD, "gateway_token": "4242 4242 4242 4242"}, "gateway_token"),
    ({**CARD, "gateway_token": ""}, "gateway_token"),
    ({**CARD, "brand": "bitcoin"}, "brand"),
    ({**CARD, "set_default": "yes"}, "set_default"),
    ({k: v for k, v in CARD.items() if k != "gateway_token"}, "gateway_token"),
    ({k: v for k, v in CARD.items() if k != "last4"}, "last4"),
    ({"type": "pix", "last4": "4242"}, "last4"),
    ({"type": "bank_slip", "gateway_token": "tok"}, "gateway_token"),
    ({"type": "boleto"}, "type"),
    ({}, "type"),
])
def test_bad_payment_method_input_is_422_naming_the_field_and_attaches_nothing(api, account, body, field):
    response = api.post(_path(account["id"]), body)
    assert response.status_code == 422, response.content
    error = response.json()["error"]
    assert error["field"] == field
    assert "4242424242424242" not in response.content.decode()
    assert not PaymentMethod.objects.exists()
    assert not Event.objects.filter(type__startswith="payment_method.").exists()


def test_a_card_expiring_this_month_is_still_accepted(api, account):
    assert attach(api, account["id"], {**CARD, "exp_year": 2026, "exp_month": 3})["exp_month"] == 3


def test_a_payment_method_is_found_only_under_its_own_account(api, account):
    other_account = create_account(api, email="other@example.com")
    card = attach(api, account["id"], CARD)
    assert api.get(_path(other_account["id"], card["id"])).status_code == 404
    assert api.delete(_path(other_account["id"], card["id"])).status_code == 404
    assert api.patch(_path(other_account["id"], card["id"]), {"is_default": True}).status_code == 404
    assert PaymentMethod.objects.get(public_id=card["id"]).status == "active"


def test_list_paginates(api, account):
    ids = [attach(api, account["id"], {**CARD, "gateway_token": f"tok_{i}"})["id"] for i in range(3)]
    page = api.get(_path(account["id"]), params={"limit": 2}).json()
    assert [m["id"] for m in page["data"]] == ids[::-1][:2] and page["has_more"]
    rest = api.get(_path(account["id"]), params={"limit": 2, "cursor": page["next_cursor"]}).json()
    assert [m["id"] for m in rest["data"]] == [ids[0]] and not rest["has_more"]
