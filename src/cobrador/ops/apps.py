from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class OpsConfig(AppConfig):
    """Operations: probes, metrics and the console's templates and static files (no models)."""

    name = "cobrador.ops"
    label = "ops"


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """django.contrib.admin with the operator's console (ops/console.py) as its site."""

    default = False  # named in INSTALLED_APPS in place of django.contrib.admin; cobrador.ops is OpsConfig
    default_site = "cobrador.ops.console.ConsoleSite"
