from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "cobrador.usage"
    label = "usage"

    def ready(self):
        from cobrador.usage import sink  # noqa: F401  registers the event sink
