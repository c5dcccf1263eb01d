from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "cobrador.catalog"
    label = "catalog"
