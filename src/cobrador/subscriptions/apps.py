from django.apps import AppConfig


class SubscriptionsConfig(AppConfig):
    name = "cobrador.subscriptions"
    label = "subscriptions"
