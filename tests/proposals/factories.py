"""Proposal test data made through the real services and API, no mocks."""

from datetime import date

from django.db import transaction

from cobrador.proposals import services
from cobrador.proposals.models import Proposal
from tests.subscriptions.conftest import make_plan


def make_proposal(organization, *, expires_on: date, plan=None, prospect=True, account=None, send=True,
                  quantity=1, **kwargs) -> Proposal:
    plan = plan or make_plan(organization)
    with transaction.atomic():
        proposal = services.create_proposal(
            organization=organization, lines=[{"plan": plan.public_id, "quantity": quantity}], expires_on=expires_on,
            account=account.public_id if account is not None else None,
            prospect={"name": "Joana Lima", "email": "joana@example.com", "document": None, "locale": "pt-BR"}
            if account is None and prospect else None, **kwargs)
        if send:
            services.send_proposal(proposal=proposal)
    return Proposal.objects.select_related("organization", "account").get(pk=proposal.pk)
