from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "cobrador.callbacks"
    label = "callbacks"

    def ready(self):
        # Deferred: these modules use models, which load only once the app registry is ready.
        from cobrador.callbacks.sweeps import prune_settled_callbacks
        from cobrador.jobs.retention import register_pruner

        register_pruner("callbacks", prune_settled_callbacks)
