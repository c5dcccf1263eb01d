from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "cobrador.pages"
    label = "pages"

    def ready(self):
        from cobrador.notifications.links import register_link_builder
        from cobrador.pages import links

        # E-mails about proposals and invoices link to these pages (notifications never imports pages).
        register_link_builder("proposal", links.builder("proposal"))
        register_link_builder("invoice", links.builder("invoice"))
