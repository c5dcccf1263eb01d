import pytest

from tests.subscriptions.conftest import make_account, make_plan


@pytest.fixture
def org(api):
    return api.organization


@pytest.fixture
def account(org, clock):
    return make_account(org)


@pytest.fixture
def plan(org, clock):
    return make_plan(org, amount=10000)
