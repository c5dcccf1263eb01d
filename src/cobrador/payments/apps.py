from django.apps import AppConfig


class PaymentsConfig(AppConfig):
    name = "cobrador.payments"
    label = "payments"

    def ready(self):
        from cobrador.payments import sink  # noqa: F401  registers the event sink
