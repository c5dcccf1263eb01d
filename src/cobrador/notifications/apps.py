from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "cobrador.notifications"
    label = "notifications"

    def ready(self):
        # Deferred: these modules use models, which load only once the app registry is ready.
        from cobrador.jobs.retention import register_pruner
        from cobrador.notifications import sink  # noqa: F401  registers the event sink
        from cobrador.notifications.sweeps import prune_sent_notices

        register_pruner("notices", prune_sent_notices)
