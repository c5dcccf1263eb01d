"""Every webhook event type cobrador emits (`resource.action`). Endpoints subscribe to these or to all."""

EVENT_TYPES = frozenset({
    "ping",
    "dunning_config.updated",
    "webhook_endpoint.disabled",
    "billing_account.created", "billing_account.updated", "billing_account.delinquent",
    "billing_account.suspended", "billing_account.reactivated",
    "payment_method.attached", "payment_method.detached",
    "subscription.created", "subscription.updated", "subscription.trial_will_end",
    "subscription.renewal_prompted", "subscription.renewed", "subscription.paused", "subscription.resumed",
    "subscription.canceled", "subscription.expired",
    "invoice.created", "invoice.paid", "invoice.payment_failed", "invoice.overdue", "invoice.voided",
    "payment.succeeded", "payment.failed", "payment.pending", "payment.unknown", "payment.refunded",
    "payment.overpaid",
    "dunning.retry_attempted", "dunning.exhausted",
    "nfe.issued", "nfe.failed", "nfe.canceled",
    "proposal.sent", "proposal.viewed", "proposal.accepted", "proposal.declined", "proposal.expired",
    "proposal.canceled", "proposal.expiring_soon",
    "custom_domain.verified", "custom_domain.active", "custom_domain.certificate_renewed", "custom_domain.failed",
    "custom_domain.inactive", "custom_domain.dns_missing", "custom_domain.certificate_renewal_failed",
})

# The keys under which an event's data names the billing account it is about (an account's own events
# carry it as their `id`): what the notification sink and the console's account timeline look up.
ACCOUNT_KEYS = ("account", "account_id", "billing_account", "billing_account_id")
