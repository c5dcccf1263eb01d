from django.apps import AppConfig


class GatewaysConfig(AppConfig):
    name = "cobrador.gateways"
    label = "gateways"
