"""The business conditions of subscriptions, each with its stable `type`."""

from cobrador.core.errors import Conflict


class BillingAccountNotActive(Conflict):
    type = "billing_account_not_active"


class SubscriptionNotLive(Conflict):
    """Canceled, expired or otherwise not running: it takes no changes."""
    type = "subscription_not_live"


class SubscriptionCommitted(Conflict):
    type = "subscription_committed"


class SubscriptionNotPromptRenewal(Conflict):
    type = "subscription_not_prompt_renewal"


class SubscriptionCancelScheduled(Conflict):
    type = "subscription_cancel_scheduled"


class SubscriptionNotResumable(Conflict):
    type = "subscription_not_resumable"


class SubscriptionNotRunning(Conflict):
    """Paused: no running period to change at once (proration `now`)."""
    type = "subscription_not_running"
