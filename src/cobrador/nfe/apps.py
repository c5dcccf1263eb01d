from django.apps import AppConfig


class NfeConfig(AppConfig):
    name = "cobrador.nfe"
    label = "nfe"
    verbose_name = "NFS-e"

    def ready(self):
        # Registrations with the lower apps, which never import nfe: the event sink, the NFe.io provider
        # of the callbacks inbox, the invoice object's `service_invoice` field.
        from cobrador.invoicing.services import register_invoice_extension
        from cobrador.nfe import processing, sink  # noqa: F401
        from cobrador.nfe.services import invoice_extension

        register_invoice_extension(invoice_extension)
