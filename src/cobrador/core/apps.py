from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "cobrador.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from cobrador.core import lookups

        lookups.register()
