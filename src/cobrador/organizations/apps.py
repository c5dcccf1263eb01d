from django.apps import AppConfig


class OrganizationsConfig(AppConfig):
    name = "cobrador.organizations"
    label = "organizations"

    def ready(self):
        # Deferred: these modules use models, which load only once the app registry is ready.
        from cobrador.jobs.retention import register_pruner
        from cobrador.organizations.idempotency import prune_idempotency_keys

        register_pruner("idempotency_keys", prune_idempotency_keys)
