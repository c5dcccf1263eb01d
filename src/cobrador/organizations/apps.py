from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "cobrador.organizations"
    label = "organizations"
