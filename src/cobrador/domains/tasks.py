"""Thin tasks: one task checks or orders for every domain that is due, never one task per domain."""

from django.tasks import task

from cobrador.core import clock
from cobrador.domains import issuing


@task
def issue_certificates() -> dict:
    """Enqueued in the transaction that verifies domains (so ordering starts right after commit); the
    custom-domain-ssl job does the same every hour."""
    return dict(issuing.issue_due(as_of=clock.now()))
