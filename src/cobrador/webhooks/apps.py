from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "cobrador.webhooks"
    label = "webhooks"

    def ready(self):
        from cobrador.webhooks import services  # noqa: F401  registers the event sink
