"""Thin tasks: triggers for dunning services."""

from django.tasks import task

from cobrador.dunning import retries


@task
def retry_with_payment_method(payment_method_id: int) -> dict:
    """Enqueued (by the event sink) when a payment method is saved on an account with invoices in dunning."""
    return dict(retries.retry_with_payment_method(payment_method_id=payment_method_id))
