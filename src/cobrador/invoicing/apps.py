from django.apps import AppConfig


class InvoicingConfig(AppConfig):
    name = "cobrador.invoicing"
    label = "invoicing"
