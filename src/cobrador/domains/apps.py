from django.apps import AppConfig


class DomainsConfig(AppConfig):
    name = "cobrador.domains"
    label = "domains"
    verbose_name = "Custom domains"
