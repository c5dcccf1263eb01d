"""The business conditions of webhook endpoints, each with its stable `type`."""

from cobrador.core.errors import Conflict


class WebhookEndpointDisabled(Conflict):
    type = "webhook_endpoint_disabled"
