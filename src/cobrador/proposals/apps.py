from django.apps import AppConfig


class ProposalsConfig(AppConfig):
    name = "cobrador.proposals"
    label = "proposals"
