"""Helpers for the usage tests: the ledger read back, and suspension the way dunning does it."""

from django.db import transaction

from cobrador.core import clock
from cobrador.customers.services import account_data
from cobrador.events.services import record_event
from cobrador.usage.models import MrrMovement


def movements(organization=None) -> list[tuple]:
    rows = MrrMovement.objects.order_by("pk")
    if organization is not None:
        rows = rows.filter(organization=organization)
    return list(rows.values_list("kind", "delta", "mrr_after"))


def suspend(account):
    """Suspend an account and emit billing_account.suspended, as dunning's `suspend` does once its
    grace period is exhausted (the dunning tests cover how it gets there)."""
    with transaction.atomic():
        account.status, account.suspended_at, account.updated_at = "suspended", clock.now(), clock.now()
        account.save(update_fields=["status", "suspended_at", "updated_at"])
        record_event(organization=account.organization, type="billing_account.suspended", data=account_data(account))


def reactivate(account):
    with transaction.atomic():
        account.status, account.suspended_at, account.updated_at = "active", None, clock.now()
        account.save(update_fields=["status", "suspended_at", "updated_at"])
        record_event(organization=account.organization, type="billing_account.reactivated",
                     data=account_data(account))
