from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "cobrador.webhooks"
    label = "webhooks"

    def ready(self):
        # Deferred: these modules use models, which load only once the app registry is ready.
        from cobrador.jobs.retention import register_pruner
        from cobrador.webhooks import services  # noqa: F401  registers the event sink
        from cobrador.webhooks.delivery import prune_finished_deliveries

        register_pruner("webhook_deliveries", prune_finished_deliveries)
