from django.apps import AppConfig


class EventsConfig(AppConfig):
    name = "cobrador.events"
    label = "events"
