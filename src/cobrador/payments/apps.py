from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "cobrador.payments"
    label = "payments"
