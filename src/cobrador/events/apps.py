from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "cobrador.events"
    label = "events"

    def ready(self):
        # Deferred: these modules use models, which load only once the app registry is ready.
        from cobrador.events.services import prune_old_events
        from cobrador.jobs.retention import register_pruner

        register_pruner("events", prune_old_events)
