"""The operators' console (Django admin) as issue 16 asks for it without a browser: titled cobrador, labels
spelled right, and list pages short enough to fit a laptop screen (at most 7 columns each)."""

import re

import pytest
from django.contrib import admin
from django.test import RequestFactory

MOST_COLUMNS = 7

pytestmark = pytest.mark.django_db


def test_the_console_is_titled_cobrador(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "<title>Operations | cobrador</title>" in page
    assert ">cobrador</a>" in page
    assert "Django administration" not in page and "Django site admin" not in page


def test_the_index_spells_every_label_right(admin_client):
    page = admin_client.get("/admin/").content.decode()
    assert "Notification settings</a>" in page and "Account notification settings</a>" in page
    assert "Webhook deliveries</a>" in page
    for model in admin.site._registry:
        plural = str(model._meta.verbose_name_plural)
        assert not re.search(r"(ss|[^aeiou]ys)$", plural), (model, plural)  # not "settingss", "deliverys"


@pytest.mark.parametrize("model", list(admin.site._registry), ids=lambda model: model._meta.label)
def test_every_list_page_loads_with_at_most_seven_columns(model, admin_client, admin_user):
    request = RequestFactory().get("/")
    request.user = admin_user
    columns = [c for c in admin.site._registry[model].get_list_display(request) if c != "action_checkbox"]
    assert len(columns) <= MOST_COLUMNS, columns

    response = admin_client.get(f"/admin/{model._meta.app_label}/{model._meta.model_name}/")
    assert response.status_code == 200
