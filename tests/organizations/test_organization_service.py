"""create_organization validates its input as every service does: a ValidationFailed naming the field,
and nothing written."""

import pytest

from cobrador.core.errors import ValidationFailed
from cobrador.organizations.models import DunningConfig, Organization
from cobrador.organizations.services import create_organization

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(("kwargs", "field", "message"), [
    ({"name": ""}, "name", "name: must not be empty"),
    ({"name": " \t "}, "name", "name: must not be empty"),
    ({"name": "x" * 201}, "name", "name: must be at most 200 characters"),
    ({"name": "Acme", "mode": "production"}, "mode", "mode: must be test or live, not 'production'"),
    ({"name": "Acme", "billing_email": "not-an-address"}, "billing_email",
     "billing_email: 'not-an-address' is not an e-mail address"),
])
def test_invalid_input_is_refused_naming_the_field_and_writes_nothing(kwargs, field, message):
    with pytest.raises(ValidationFailed) as refused:
        create_organization(**kwargs)

    assert (refused.value.field, refused.value.message, refused.value.status) == (field, message, 422)
    assert refused.value.body()["error"]["type"] == "validation_error"
    assert not Organization.objects.exists() and not DunningConfig.objects.exists()


def test_the_name_is_stored_without_surrounding_blanks_and_200_characters_fit():
    organization = create_organization(name="  Acme Ltda \n", mode="live", billing_email="billing@acme.test")
    assert (organization.name, organization.mode, organization.billing_email) == (
        "Acme Ltda", "live", "billing@acme.test")
    assert DunningConfig.objects.filter(organization=organization).exists()

    assert len(create_organization(name="x" * 200).name) == 200
