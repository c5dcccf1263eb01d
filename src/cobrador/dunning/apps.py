from django.apps import AppConfig


class DunningConfig(AppConfig):
    name = "cobrador.dunning"
    label = "dunning"

    def ready(self):
        from cobrador.dunning import sink  # noqa: F401  registers the event sink
