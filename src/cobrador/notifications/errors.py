"""The business conditions of notifications, each with its stable `type`."""

from cobrador.core.errors import ValidationFailed


class NotificationWebhookNotSet(ValidationFailed):
    type = "notification_webhook_not_set"
