import pytest

from tests.conftest import make_org


@pytest.fixture
def test_api(db):
    """A test-mode organization: its charges go to the built-in sandbox."""
    return make_org("Signup", "test")
