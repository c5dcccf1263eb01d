from django.apps import AppConfig


class CustomersConfig(AppConfig):
    name = "cobrador.customers"
    label = "customers"
