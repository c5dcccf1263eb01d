from django.apps import AppConfig


class JobsConfig(AppConfig):
    name = "cobrador.jobs"
    label = "jobs"
