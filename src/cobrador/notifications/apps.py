from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "cobrador.notifications"
    label = "notifications"

    def ready(self):
        from cobrador.notifications import sink  # noqa: F401  registers the event sink
