from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "cobrador.dashboard"
    label = "dashboard"
