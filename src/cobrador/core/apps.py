from django.apps import AppConfig
from django.db.models.signals import post_migrate


class CoreConfig(AppConfig):
    name = "cobrador.core"
    label = "core"
    verbose_name = "Core"

    def ready(self):
        from cobrador.core import lookups
        from cobrador.core.startup import write_canary_after_migrate  # imports models: not before ready()

        lookups.register()
        # Once per migrate (sender=this app), after every app's migrations ran.
        post_migrate.connect(write_canary_after_migrate, sender=self, dispatch_uid="cobrador-encryption-canary")
