from django.apps import AppConfig


class CallbacksConfig(AppConfig):
    name = "cobrador.callbacks"
    label = "callbacks"
