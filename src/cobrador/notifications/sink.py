"""The event sink: domain events a customer (or the organization) should hear about become notices,
in the business transaction that recorded the events.

Events carry the API object; the billing account is found from it by public id (`account`,
`account_id`, ... or through the invoice or subscription it names), always within the event's own
organization. An event whose account cannot be found is skipped and counted in `stats`.
"""

import logging
from collections import Counter
from urllib.parse import quote

from django.conf import settings

from cobrador.catalog.models import Plan
from cobrador.customers.models import BillingAccount
from cobrador.events.services import register_sink
from cobrador.events.types import ACCOUNT_KEYS
from cobrador.invoicing.models import Invoice
from cobrador.notifications import contexts, formatting, links, services
from cobrador.subscriptions.models import Subscription

logger = logging.getLogger(__name__)

EVENT_TO_NOTICE = {
    "invoice.created": "invoice_created",
    "payment.succeeded": "payment_succeeded",
    "payment.failed": "payment_failed",
    "invoice.payment_failed": "payment_failed",
    "dunning.retry_attempted": "payment_failed",  # when the attempt failed or issued a boleto / PIX
    "subscription.trial_will_end": "trial_ending",
    "subscription.renewed": "subscription_renewed",
    "subscription.renewal_prompted": "renewal_prompt",
    "billing_account.suspended": "account_suspended",
    "billing_account.reactivated": "account_reactivated",
    "webhook_endpoint.disabled": "webhook_endpoint_disabled",
    "nfe.issued": "nfe_issued",
    "nfe.failed": "nfe_failed",
    "proposal.sent": "proposal_sent",
    "proposal.expiring_soon": "proposal_reminder",
    "proposal.accepted": "proposal_accepted",
    "proposal.expired": "proposal_expired",
    "custom_domain.failed": "custom_domain_problem",
    "custom_domain.inactive": "custom_domain_problem",
    "custom_domain.dns_missing": "custom_domain_problem",
    "custom_domain.certificate_renewal_failed": "custom_domain_problem",
}
# Proposals go to a billing account or to a prospect that has none yet (its e-mail is on the proposal).
PROSPECT_TYPES = {"proposal_sent", "proposal_reminder"}
# Their e-mails link to the hosted invoice page (when an app serves one and the event names no URL).
INVOICE_PAGE_TYPES = {"invoice_created", "payment_succeeded"}
# Their e-mails link to the organization's update_card_url, or else to the hosted card update page.
CARD_PAGE_TYPES = {"payment_failed", "trial_ending", "account_suspended"}
# The seller hears of these at the organization's billing e-mail.
SELLER_TYPES = {"proposal_accepted", "proposal_expired"}

stats: Counter = Counter()  # per process: "unresolved" events skipped, "notified" events turned into notices


def _invoice_ref(event) -> str | None:
    data = event.data
    if data.get("object") == "invoice" or event.type.startswith("invoice."):
        return contexts.ref(data.get("id"))
    return contexts.first_ref(data, "invoice", "invoice_id")


def _subscription_ref(event) -> str | None:
    data = event.data
    if data.get("object") == "subscription" or event.type.startswith("subscription."):
        return contexts.ref(data.get("id"))
    return contexts.first_ref(data, "subscription", "subscription_id")


def _trial(account, event) -> tuple[int, str | None]:
    """A subscription.trial_will_end as services.trials_with_payment_method takes it."""
    return account.pk, contexts.ref(event.data.get("payment_method"))


class _Lookups:
    """Everything the batch of events refers to, fetched with a few queries."""

    def __init__(self, events):
        org_ids = {e.organization_id for e in events}
        # The invoice is needed to find the account when the event does not name it, and for payment events'
        # invoice number; the subscription only to find the account.
        invoice_refs = {r for e in events if (e.type.startswith(("payment.", "dunning."))
                                              or not self._direct_account_ref(e)) and (r := _invoice_ref(e))}
        self.invoices = {(i.organization_id, i.public_id): i for i in Invoice.objects.filter(
            organization_id__in=org_ids, public_id__in=invoice_refs).select_related("account")} if invoice_refs else {}
        subscription_refs = {r for e in events if not self._direct_account_ref(e) and (r := _subscription_ref(e))}
        self.subscriptions = {(s.organization_id, s.public_id): s for s in Subscription.objects.filter(
            organization_id__in=org_ids, public_id__in=subscription_refs).select_related("account", "plan")} \
            if subscription_refs else {}
        account_refs = {r for e in events if (r := self._direct_account_ref(e))}
        self.accounts = {(a.organization_id, a.public_id): a for a in BillingAccount.objects.filter(
            organization_id__in=org_ids, public_id__in=account_refs)} if account_refs else {}
        plan_refs = {contexts.ref(e.data.get("plan")) for e in events if e.type.startswith("subscription.")}
        plan_refs.discard(None)
        self.plan_names = dict(Plan.objects.filter(organization_id__in=org_ids, public_id__in=plan_refs)
                               .values_list("public_id", "name")) if plan_refs else {}
        # Links to the hosted proposal page, when an app registered a builder for them.
        self.invoice_links = links.links_for("invoice", (
            (e.organization_id, r) for e in events
            if EVENT_TO_NOTICE.get(e.type) in INVOICE_PAGE_TYPES and (r := _invoice_ref(e))))
        self.proposal_links = links.links_for("proposal", (
            (e.organization_id, r) for e in events
            if EVENT_TO_NOTICE.get(e.type) in PROSPECT_TYPES and (r := contexts.ref(e.data.get("id")))))
        self.card_links: dict = {}  # add_card_links, once the organizations' settings are known
        self.trials_with_payment_method = services.trials_with_payment_method(
            _trial(account, e) for e in events if e.type == "subscription.trial_will_end"
            if (account := self.account_for(e)) is not None)

    def add_card_links(self, events, configs) -> None:
        """Card update page links for the accounts of card notices whose organization has no
        update_card_url of its own (minted once per account for the batch)."""
        self.card_links = links.links_for("card", (
            (e.organization_id, account.public_id) for e in events
            if EVENT_TO_NOTICE.get(e.type) in CARD_PAGE_TYPES and not configs[e.organization_id].update_card_url
            and (account := self.account_for(e)) is not None))

    @staticmethod
    def _direct_account_ref(event) -> str | None:
        if event.data.get("object") == "billing_account" or event.type.startswith("billing_account."):
            return contexts.ref(event.data.get("id"))
        return contexts.first_ref(event.data, *ACCOUNT_KEYS)

    def account_for(self, event):
        ref = self._direct_account_ref(event)
        if ref and (event.organization_id, ref) in self.accounts:
            return self.accounts[(event.organization_id, ref)]
        invoice = self.invoices.get((event.organization_id, _invoice_ref(event)))
        if invoice is not None:
            return invoice.account
        subscription = self.subscriptions.get((event.organization_id, _subscription_ref(event)))
        if subscription is not None:
            return subscription.account
        return None


def _proposal_draft(event, type_name: str, account, lookups: _Lookups, config) -> services.NoticeDraft:
    data, organization = event.data, event.organization
    prospect = data.get("prospect") if isinstance(data.get("prospect"), dict) else {}
    entity = str(contexts.ref(data.get("id")) or event.public_id)
    draft = services.NoticeDraft(organization=organization, type=type_name, account=account, key=entity)
    customer_name = account.name if account is not None else str(prospect.get("name") or "")
    if type_name in SELLER_TYPES:
        draft.account = None
        draft.recipient = organization.billing_email
        locale = config.organization_locale
        # The seller's people open the proposal in the operations console (searched by its id); its API
        # address is in the text too.
        draft.link = f"{settings.PUBLIC_URL}/admin/proposals/proposal/?q={quote(entity, safe='')}"
    else:
        locale = account.locale if account is not None else str(prospect.get("locale") or "pt-BR")
        draft.link = lookups.proposal_links.get((event.organization_id, entity), "")
        if account is None:
            draft.recipient, draft.locale = str(data.get("email") or ""), locale
            draft.context["account"] = {"id": "", "name": customer_name, "email": draft.recipient}
    draft.context["proposal"] = contexts.proposal_context(data, locale, customer_name)
    if type_name in SELLER_TYPES:
        draft.context["proposal"]["api_url"] = f"{settings.PUBLIC_URL}/v1/proposals/{quote(entity, safe='')}"
    if type_name == "proposal_sent":
        draft.key = f"{entity}:{event.public_id}"  # each send mails once
    elif type_name == "proposal_reminder":
        draft.key = f"{entity}:{data.get('expires_on')}:{data.get('days_before')}"
        expires_on = formatting.local_date(data.get("expires_on"))
        today = formatting.local_date(event.created_at, organization.timezone)
        draft.context["days_left"] = max(0, (expires_on - today).days) if expires_on and today else 0
    return draft


def _draft(event, type_name: str, account, lookups: _Lookups, config) -> services.NoticeDraft | None:
    data, organization = event.data, event.organization
    if type_name.startswith("proposal_"):
        return _proposal_draft(event, type_name, account, lookups, config)
    entity = str(contexts.ref(data.get("id")) or event.public_id)  # never "None": that would dedupe unrelated events
    timezone = organization.timezone
    locale = account.locale if account is not None else config.organization_locale
    draft = services.NoticeDraft(organization=organization, type=type_name, account=account, key="")

    def update_card_link(payment_method_id=None):
        if not config.update_card_url:
            return lookups.card_links.get((event.organization_id, account.public_id), "")
        return services.build_link(config.update_card_url, account_id=account.public_id,
                                   payment_method_id=payment_method_id)

    if type_name == "webhook_endpoint_disabled":
        draft.recipient = organization.billing_email
        draft.key = f"{entity}:{data.get('disabled_at') or event.created_at.isoformat()}"
        draft.context = {"endpoint": {"id": str(data.get("id") or ""), "url": str(data.get("url") or ""),
                                      "reason": str(data.get("reason") or data.get("disabled_reason") or ""),
                                      "disabled_at": formatting.day(data.get("disabled_at"), locale, timezone)}}
        return draft
    if type_name == "custom_domain_problem":
        draft.recipient = organization.billing_email
        draft.key = f"{entity}:{event.public_id}"  # the domain's state machine emits each incident once
        draft.context = {"domain": {key: str(data.get(key) or "") for key in
                                    ("id", "hostname", "status", "reason", "message")}}
        return draft
    if type_name in ("nfe_issued", "nfe_failed"):
        draft.context = {"service_invoice": contexts.service_invoice_context(data, locale, timezone)}
        if type_name == "nfe_failed":
            draft.recipient = organization.billing_email
            draft.key = f"{entity}:{data.get('external_id') or ''}"  # each attempt's failure, once
        else:
            draft.key = entity
            draft.link = draft.context["service_invoice"]["pdf_url"]
        return draft
    invoice = lookups.invoices.get((event.organization_id, _invoice_ref(event)))
    invoice_data = data if data.get("object") == "invoice" or event.type.startswith("invoice.") else (
        {"id": invoice.public_id, "number": invoice.number, "total": invoice.total, "amount_due": invoice.amount_due,
         "currency": invoice.currency, "due_date": invoice.due_date} if invoice is not None else {})
    if type_name == "invoice_created":
        draft.key = entity
        draft.context = {"invoice": contexts.invoice_context(data, locale, timezone)}
        draft.link = draft.context["invoice"]["url"] or lookups.invoice_links.get(
            (event.organization_id, _invoice_ref(event)), "")
    elif type_name == "payment_succeeded":
        draft.key = entity
        draft.context = {"payment": contexts.payment_context(data, locale, timezone),
                         "invoice": contexts.invoice_context(invoice_data, locale, timezone)}
        draft.link = draft.context["invoice"]["url"] or lookups.invoice_links.get(
            (event.organization_id, _invoice_ref(event)), "")
    elif type_name == "payment_failed":
        # payment.failed, invoice.payment_failed and dunning.retry_attempted can all describe one failure:
        # one notice per invoice and day. The retry date and the boleto / PIX to pay are looked up again
        # when it is sent (delivery._payment_failed_extras), whichever of the events came first.
        draft.key = _payment_failed_key(event)
        is_payment = data.get("object") == "payment" or event.type.startswith("payment.")
        document = data.get("document") if isinstance(data.get("document"), dict) else {}
        payment = data if is_payment else {**document, "method": data.get("method")} if document else {}
        draft.context = {"payment": contexts.payment_context(payment, locale, timezone),
                         "invoice": contexts.invoice_context(invoice_data, locale, timezone),
                         "retry_date": contexts.retry_date(data, locale, timezone),
                         "boleto": contexts.boleto_context(document, locale, timezone),
                         "pix": contexts.pix_context(document, locale, timezone)}
        draft.link = update_card_link(contexts.ref(data.get("payment_method")))
    elif type_name in ("subscription_renewed", "renewal_prompt", "trial_ending"):
        plan_name = lookups.plan_names.get(contexts.ref(data.get("plan")) or "", "")
        subscription = contexts.subscription_context(data, locale, timezone, plan_name)
        draft.context = {"subscription": subscription}
        if type_name == "subscription_renewed":
            draft.key = f"{entity}:{data.get('current_period_start')}"
        elif type_name == "renewal_prompt":
            draft.key = f"{entity}:{data.get('commitment_end') or data.get('current_period_end')}"
            draft.link = services.build_link(config.confirm_renewal_url, account_id=account.public_id,
                                             subscription_id=str(data.get("id") or ""))
        else:
            trial_end = formatting.local_date(data.get("trial_end"), timezone)
            draft.key = f"{entity}:{trial_end}"
            today = formatting.local_date(event.created_at, timezone)
            draft.context["days_left"] = max(0, (trial_end - today).days) if trial_end else 0
            draft.context["has_payment_method"] = _trial(account, event) in lookups.trials_with_payment_method
            draft.link = update_card_link()
    elif type_name == "account_suspended":
        draft.key = f"{account.public_id}:{data.get('suspended_at') or event.created_at.isoformat()}"
        draft.context = {"reason": str(data.get("suspension_reason") or data.get("reason") or "")}
        draft.link = update_card_link()
    elif type_name == "account_reactivated":
        draft.key = f"{account.public_id}:{event.created_at.isoformat()}"
    return draft


def _payment_failed_key(event) -> str:
    """One payment_failed notice per invoice and day, whichever of its events comes first."""
    entity = str(contexts.ref(event.data.get("id")) or event.public_id)
    return f"{_invoice_ref(event) or entity}:{event.created_at.date().isoformat()}"


def _first_of_each_failure(events) -> list:
    """payment.failed, invoice.payment_failed and dunning.retry_attempted can all describe one failure,
    within a batch or over several (a dunning attempt's card, then its boleto): only the first event
    of each becomes a notice. The others are dropped here, before anything is looked up for them."""
    kept, keys = [], {}
    for event in events:
        if EVENT_TO_NOTICE[event.type] != "payment_failed":
            kept.append(event)
        elif (key := _payment_failed_key(event)) not in keys:
            keys[key] = event
    written = services.existing_notice_keys("payment_failed", list(keys))
    return kept + [event for key, event in keys.items() if key not in written]


def _tells_of_a_failure(event) -> bool:
    """A dunning attempt is news for the customer when a charge failed in it or it issued a document to
    pay: its card may have failed before the boleto could not be issued (an attempt ending in `error`)."""
    if event.type != "dunning.retry_attempted":
        return True
    data = event.data
    return data.get("outcome") in ("failed", "issued") or any(
        isinstance(r, dict) and r.get("outcome") == "failed" for r in data.get("records") or ())


def notify_from_events(events) -> None:
    relevant = _first_of_each_failure([
        e for e in events if e.type in EVENT_TO_NOTICE and getattr(e, "notify", True) and _tells_of_a_failure(e)])
    if not relevant:
        return
    lookups = _Lookups(relevant)
    configs = services.settings_for_organizations({e.organization_id for e in relevant})
    lookups.add_card_links(relevant, configs)
    drafts, drafted = [], set()
    for event in relevant:
        type_name = EVENT_TO_NOTICE[event.type]
        account = None
        # The organization's own notices.
        if type_name not in ("webhook_endpoint_disabled", "nfe_failed", "custom_domain_problem"):
            account = lookups.account_for(event)
            if account is None and type_name not in PROSPECT_TYPES | SELLER_TYPES:
                stats["unresolved"] += 1
                logger.info("notifications: skipped %s %s: no billing account found in its data",
                            event.type, event.public_id)
                continue
        draft = _draft(event, type_name, account, lookups, configs[event.organization_id])
        stats["notified"] += 1
        # Several events of one batch can describe one notice (payment.failed, invoice.payment_failed and
        # dunning.retry_attempted): the first is kept, as the dedupe key would keep it in the table.
        if (draft.type, draft.key) not in drafted:
            drafted.add((draft.type, draft.key))
            drafts.append(draft)
    services.enqueue_notices(drafts, configs=configs)


register_sink(notify_from_events)
