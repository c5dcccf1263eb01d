"""Every notification type, in one place: who hears it, over which channels, and the sample data its
templates are previewed with. A new type is one entry here plus its default templates in
default_templates/<locale>.toml.

Template context (plain data only, never model objects); every type gets
  organization {name}, account {id, name, email} (account types), link (the direct link, "" if none),
  unsubscribe_url (e-mail only), locale
and the keys named in its `context_keys`. Amounts and dates arrive formatted for the locale.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from cobrador.notifications import formatting

CHANNELS = ("email", "in_app", "webhook")
ACCOUNT = "account"
ORGANIZATION = "organization"


@dataclass(frozen=True)
class NotificationType:
    name: str
    audience: str  # ACCOUNT: a billing account's contacts; ORGANIZATION: the organization's billing e-mail
    description: str
    context_keys: tuple[str, ...]
    sample: Callable[[str], dict] = field(repr=False)
    channels: tuple[str, ...] = CHANNELS

    @property
    def editable(self) -> bool:
        """Organizations edit the templates of what their customers receive; cobrador's own mails to
        organizations always use the shipped templates."""
        return self.audience == ACCOUNT


def _invoice(locale: str, **extra) -> dict:
    return {"id": "in_sample", "number": "1042", "total": formatting.money(19900, "BRL", locale),
            "amount_due": formatting.money(19900, "BRL", locale),
            "due_date": formatting.day("2026-03-10", locale), "url": "https://example.com/invoices/1042", **extra}


def _subscription(locale: str) -> dict:
    return {"id": "sub_sample", "plan_name": "Pro",
            "trial_end": formatting.day("2026-03-04", locale),
            "current_period_start": formatting.day("2026-03-01", locale),
            "current_period_end": formatting.day("2026-04-01", locale),
            "term_end": formatting.day("2026-03-16", locale)}


def _service_invoice(locale: str, **extra) -> dict:
    return {"id": "nfse_sample", "number": "2026000123", "verification_code": "AB12-CD34",
            "amount": formatting.money(19900, "BRL", locale), "issued_at": formatting.day("2026-03-01", locale),
            "invoice": "in_sample", "pdf_url": "https://example.com/nfse/123.pdf", "error": "", **extra}


def _proposal(locale: str) -> dict:
    return {"id": "prop_sample", "number": 17, "total": formatting.money(29900, "BRL", locale),
            "expires_on": formatting.day("2026-03-10", locale), "customer_name": "Joana Lima",
            "customer_email": "joana@example.com", "message": "", "lines": [
                {"plan_name": "Pro", "quantity": 2, "amount": formatting.money(29900, "BRL", locale)}]}


_TYPES = [
    NotificationType(
        "invoice_created", ACCOUNT, "A new invoice was issued.", ("invoice",),
        lambda loc: {"invoice": _invoice(loc)}),
    NotificationType(
        "invoice_due_soon", ACCOUNT, "An open invoice is due in a few days (settings: invoice_due_soon_days).",
        ("invoice", "days_until_due"),
        lambda loc: {"invoice": _invoice(loc), "days_until_due": 3}),
    NotificationType(
        "invoice_overdue", ACCOUNT, "An invoice is past due (settings: invoice_overdue_days).",
        ("invoice", "days_overdue"),
        lambda loc: {"invoice": _invoice(loc), "days_overdue": 1}),
    NotificationType(
        "payment_succeeded", ACCOUNT, "A payment went through.", ("payment", "invoice"),
        lambda loc: {"payment": {"id": "pay_sample", "amount": formatting.money(19900, "BRL", loc),
                                 "method": "card", "paid_at": formatting.day("2026-03-01", loc),
                                 "failure_message": ""},
                     "invoice": _invoice(loc)}),
    NotificationType(
        "payment_failed", ACCOUNT,
        "A charge failed; carries the next retry date and, when dunning issued one, the boleto or PIX to pay.",
        ("payment", "invoice", "retry_date", "boleto", "pix"),
        lambda loc: {"payment": {"id": "pay_sample", "amount": formatting.money(19900, "BRL", loc),
                                 "method": "card", "paid_at": "",
                                 "failure_message": "Cartão recusado" if loc == "pt-BR" else "Card declined"},
                     "invoice": _invoice(loc), "retry_date": formatting.day("2026-03-03", loc),
                     "boleto": {"url": "https://example.com/boleto/1042", "line": "23793.38128 60000.000003 "
                                "00000.000400 1 84340000019900",
                                "barcode": "23791843400000199003381260000000000000000040",
                                "expires_at": formatting.day("2026-03-06", loc)},
                     "pix": {"copy_paste": "00020126580014br.gov.bcb.pix0136sample5204000053039865802BR6304ABCD",
                             "qr_code_url": "https://example.com/pix/1042.png",
                             "expires_at": formatting.day("2026-03-02", loc)}}),
    NotificationType(
        "trial_ending", ACCOUNT, "A trial ends in a few days; stresses a missing payment method.",
        ("subscription", "days_left", "has_payment_method"),
        lambda loc: {"subscription": _subscription(loc), "days_left": 3, "has_payment_method": False}),
    NotificationType(
        "subscription_renewed", ACCOUNT, "A subscription started a new period.", ("subscription",),
        lambda loc: {"subscription": _subscription(loc)}),
    NotificationType(
        "renewal_prompt", ACCOUNT, "A prompt-mode term is ending; `link` confirms the renewal.", ("subscription",),
        lambda loc: {"subscription": _subscription(loc)}),
    NotificationType(
        "card_expiring", ACCOUNT, "The card on file expires soon; `link` updates it.", ("card", "days_left"),
        lambda loc: {"card": {"id": "pm_sample", "brand": "visa", "last4": "4242", "expires": "03/2026"},
                     "days_left": 30}),
    NotificationType(
        "account_suspended", ACCOUNT, "The account was suspended for non-payment.", ("reason",),
        lambda loc: {"reason": "Fatura em atraso" if loc == "pt-BR" else "Overdue invoice"}),
    NotificationType(
        "account_reactivated", ACCOUNT, "The account is active again.", (),
        lambda loc: {}),
    # Proposals reach prospects too (no account yet): by e-mail only, to the proposal's address.
    NotificationType(
        "proposal_sent", ACCOUNT, "A proposal for the customer to review; `link` opens the proposal page.",
        ("proposal",), lambda loc: {"proposal": _proposal(loc)}, channels=("email",)),
    NotificationType(
        "proposal_reminder", ACCOUNT,
        "An open proposal expires in a few days (proposal settings: reminder_days); `link` opens it.",
        ("proposal", "days_left"), lambda loc: {"proposal": _proposal(loc), "days_left": 3}, channels=("email",)),
    NotificationType(
        "proposal_accepted", ORGANIZATION, "The seller's news: a customer accepted a proposal.", ("proposal",),
        lambda loc: {"proposal": _proposal(loc)}, channels=("email",)),
    NotificationType(
        "proposal_expired", ORGANIZATION, "The seller's news: a proposal expired unanswered.", ("proposal",),
        lambda loc: {"proposal": _proposal(loc)}, channels=("email",)),
    NotificationType(
        "nfe_issued", ACCOUNT, "An NFS-e (service e-invoice) was issued for an invoice; `link` is its PDF.",
        ("service_invoice",),
        lambda loc: {"service_invoice": _service_invoice(loc)}),
    NotificationType(
        "webhook_endpoint_disabled", ORGANIZATION, "One of the organization's webhook endpoints was disabled.",
        ("endpoint",),
        lambda loc: {"endpoint": {"id": "we_sample", "url": "https://example.com/hooks",
                                  "reason": "failing for 5 days in a row",
                                  "disabled_at": formatting.day("2026-03-01", loc)}},
        channels=("email",)),
    NotificationType(
        "nfe_failed", ORGANIZATION, "An NFS-e could not be issued (NFe.io's or the city hall's message).",
        ("service_invoice",),
        lambda loc: {"service_invoice": _service_invoice(
            loc, error="Código de serviço inválido para o município" if loc == "pt-BR" else "Invalid service code")},
        channels=("email",)),
    NotificationType(
        "custom_domain_problem", ORGANIZATION,
        "A custom domain failed, lost its DNS records, turned inactive, or its certificate cannot be renewed.",
        ("domain",),
        lambda loc: {"domain": {"id": "cd_sample", "hostname": "pagar.example.com.br", "status": "failed",
                                "reason": "dns_timeout",
                                "message": "Routing: point pagar.example.com.br at domains.cobrador.example with a "
                                           "CNAME record; it resolves to nothing now."}},
        channels=("email",)),
    NotificationType(
        "template_failed", ORGANIZATION, "A notification template failed to render; the notice was parked.",
        ("template", "error"),
        lambda loc: {"template": {"type": "invoice_created", "locale": loc},
                     "error": "line 3: 'dict object' has no attribute 'total'"},
        channels=("email",)),
]

TYPES: dict[str, NotificationType] = {t.name: t for t in _TYPES}
ACCOUNT_TYPES = tuple(name for name, t in TYPES.items() if t.audience == ACCOUNT)


def get(name: str) -> NotificationType:
    return TYPES[name]


def sample_context(name: str, locale: str, organization_name: str = "Acme") -> dict:
    """What a preview or a test send renders with."""
    kind = TYPES[name]
    context = {"organization": {"name": organization_name}, "locale": locale,
               "link": "https://example.com/billing", "unsubscribe_url": "https://example.com/unsubscribe"}
    if kind.audience == ACCOUNT:
        context["account"] = {"id": "ba_sample", "name": "Maria Silva" if locale == "pt-BR" else "Mary Smith",
                              "email": "customer@example.com"}
    context.update(kind.sample(locale))
    return context
