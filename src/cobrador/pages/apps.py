from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "cobrador.pages"
    label = "pages"

    def ready(self):
        from cobrador.notifications.links import register_link_builder
        from cobrador.pages import links

        # E-mails about proposals and invoices link to these pages (notifications never imports pages), and
        # card notices to the card update page when the organization has no update_card_url of its own.
        register_link_builder("proposal", links.builder("proposal"))
        register_link_builder("invoice", links.builder("invoice"))
        register_link_builder("card", links.builder("card"))
