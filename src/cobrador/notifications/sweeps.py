"""The scheduled notification sweeps. Each decides by dates against `run.as_of`, so a rerun, a missed
run or two concurrent runs change nothing: every notice has a dedupe key (entity + period + offset).

- card-expiring (0 10 * * 1): active cards whose expiry (the end of the expiry month, UTC) is within the
  organization's card_expiring_days; a card already replaced by a newer default card is skipped. One
  alert per (card, expiry month, offset); when several offsets are reached, only the nearest one.
- trial-ending (0 8 * * *): trials ending within trial_ending_days (calendar days in the organization's
  time zone) emit subscription.trial_will_end once per trial_end (marked on the subscription in the
  same transaction); its notice, noting a missing payment method, is drafted from the event.
- invoice-reminders (0 9 * * *): open invoices due within invoice_due_soon_days (one reminder per due
  date) and overdue by one of invoice_overdue_days (the largest offset reached, if reached within
  CATCH_UP_DAYS, so a long-overdue invoice is not told every offset at once).
"""

import math
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.db import connection
from django.db.models import F, Q

from cobrador.core.bulk import update_rows
from cobrador.customers.models import PaymentMethod
from cobrador.events.services import EventDraft, record_events
from cobrador.invoicing.models import Invoice
from cobrador.jobs.retention import delete_in_batches
from cobrador.notifications import contexts, links, services
from cobrador.notifications.models import Notice, NotificationSettings
from cobrador.subscriptions.models import Subscription
from cobrador.subscriptions.services import subscription_data

CATCH_UP_DAYS = 7
BATCH = 500


def _widest(setting: str) -> int:
    """The largest value of a days setting over all organizations (defaults included)."""
    default = NotificationSettings.DEFAULTS[setting]
    values = [default] + list(NotificationSettings.objects.values_list(setting, flat=True))
    return max(max(v) if isinstance(v, list) else v for v in values if v not in (None, []))


def _local_day(moment: datetime, timezone: str) -> date:
    try:
        return moment.astimezone(ZoneInfo(timezone)).date()
    except (ZoneInfoNotFoundError, ValueError):
        return moment.date()


# --- card-expiring --------------------------------------------------------------------------------------

def card_expires_at(exp_month: int, exp_year: int) -> datetime:
    """A card works through the last day of its expiry month: it expires when the next month starts."""
    if exp_month == 12:
        return datetime(exp_year + 1, 1, 1, tzinfo=UTC)
    return datetime(exp_year, exp_month + 1, 1, tzinfo=UTC)


def _months_between(start: datetime, end: datetime) -> list[tuple[int, int]]:
    months, year, month = [], start.year, start.month
    while (year, month) <= (end.year, end.month):
        months.append((year, month))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def card_expiring_sweep(run) -> None:
    as_of = run.as_of
    months = _months_between(as_of, as_of + timedelta(days=_widest("card_expiring_days")))
    in_window = Q()
    for year, month in months:
        in_window |= Q(exp_year=year, exp_month=month)
    ids = PaymentMethod.objects.filter(in_window, type="card", status="active").order_by("pk").values_list(
        "pk", flat=True)

    def handle(batch):
        cards = list(PaymentMethod.objects.filter(pk__in=batch).select_related("account", "account__organization"))
        defaults = {pm.account_id: pm for pm in PaymentMethod.objects.filter(
            account_id__in={c.account_id for c in cards}, is_default=True, status="active")}
        configs = services.settings_for_organizations({c.organization_id for c in cards})
        drafts = []
        for card in cards:
            expires_at = card_expires_at(card.exp_month, card.exp_year)
            days_left = math.ceil((expires_at - as_of) / timedelta(days=1))
            if days_left <= 0:
                run.skip("expired")
                continue
            default = defaults.get(card.account_id)
            if default is not None and default.pk != card.pk and default.created_at > card.created_at:
                run.skip("replaced")
                continue
            config = configs[card.organization_id]
            reached = [d for d in config.card_expiring_days if days_left <= d]
            if not reached:
                continue
            offset = min(reached)
            account = card.account
            drafts.append(services.NoticeDraft(
                organization=account.organization, type="card_expiring", account=account,
                key=f"{card.public_id}:{card.exp_year}-{card.exp_month:02d}:{offset}",
                context={"card": contexts.card_context(card), "days_left": days_left},
                link=services.build_link(config.update_card_url, account_id=account.public_id,
                                         payment_method_id=card.public_id)))
        # No update_card_url of the organization's own: the hosted card update page, when an app serves it.
        pages = links.links_for("card", ((d.organization.pk, d.account.public_id) for d in drafts if not d.link))
        for draft in drafts:
            draft.link = draft.link or pages.get((draft.organization.pk, draft.account.public_id), "")
        run.count("alerts", len(drafts))
        services.enqueue_notices(drafts)

    run.process(list(ids), handle, batch_size=BATCH)


# --- trial-ending ---------------------------------------------------------------------------------------

def trial_ending_sweep(run) -> None:
    """subscription.trial_will_end for each trial ending within its organization's trial_ending_days,
    once per trial_end; the trial_ending notice is drafted from that event like any other."""
    as_of = run.as_of
    # Not yet warned for this trial_end; a day of margin: days are counted in each organization's time zone.
    due = Subscription.objects.filter(
        Q(trial_will_end_sent_for__isnull=True) | ~Q(trial_will_end_sent_for=F("trial_end")),
        status="trialing", trial_end__gt=as_of,
        trial_end__lte=as_of + timedelta(days=_widest("trial_ending_days") + 2))
    ids = due.order_by("pk").values_list("pk", flat=True)

    def handle(batch):
        rows = due.filter(pk__in=batch).select_related(
            "account", "organization", "plan", "coupon", "payment_method", "pending_plan").order_by("pk")
        if connection.vendor == "postgresql":  # a concurrent run waits, then finds them warned
            rows = rows.select_for_update(of=("self",))
        subscriptions = list(rows)
        configs = services.settings_for_organizations({s.organization_id for s in subscriptions})
        warned = []
        for subscription in subscriptions:
            timezone = subscription.organization.timezone
            days_left = (_local_day(subscription.trial_end, timezone) - _local_day(as_of, timezone)).days
            if days_left > configs[subscription.organization_id].trial_ending_days:
                continue
            subscription.trial_will_end_sent_for = subscription.trial_end
            warned.append(subscription)
        trials = [(s.account_id, s.payment_method.public_id if s.payment_method else None) for s in warned]
        chargeable = services.trials_with_payment_method(trials)
        for trial in trials:
            if trial not in chargeable:
                run.count("without_payment_method")
        update_rows(warned, ["trial_will_end_sent_for"])
        record_events([EventDraft(s.organization, "subscription.trial_will_end", subscription_data(s))
                       for s in warned])
        run.count("alerts", len(warned))

    run.process(list(ids), handle, batch_size=BATCH)


# --- invoice-reminders ----------------------------------------------------------------------------------

def invoice_reminders_sweep(run) -> None:
    as_of = run.as_of
    today = as_of.date()
    ahead = _widest("invoice_due_soon_days")
    behind = _widest("invoice_overdue_days") + CATCH_UP_DAYS
    # One day of margin each side: "today" is each organization's local date.
    ids = Invoice.objects.filter(
        status="open", amount_due__gt=0, due_date__gte=today - timedelta(days=behind + 1),
        due_date__lte=today + timedelta(days=ahead + 1),
    ).order_by("pk").values_list("pk", flat=True)

    def handle(batch):
        invoices = list(Invoice.objects.filter(pk__in=batch).select_related("account", "organization"))
        configs = services.settings_for_organizations({i.organization_id for i in invoices})
        drafts = []
        for invoice in invoices:
            config, account, organization = configs[invoice.organization_id], invoice.account, invoice.organization
            local_today = _local_day(as_of, organization.timezone)
            data = {"id": invoice.public_id, "number": invoice.number, "total": invoice.total,
                    "amount_due": invoice.amount_due, "currency": invoice.currency, "due_date": invoice.due_date}
            invoice_context = contexts.invoice_context(data, account.locale, organization.timezone)
            days_until_due = (invoice.due_date - local_today).days
            if 0 <= days_until_due <= config.invoice_due_soon_days:
                drafts.append(services.NoticeDraft(
                    organization=organization, type="invoice_due_soon", account=account,
                    key=f"{invoice.public_id}:{invoice.due_date.isoformat()}",
                    context={"invoice": invoice_context, "days_until_due": days_until_due}))
                run.count("due_soon")
            days_overdue = -days_until_due
            reached = [d for d in config.invoice_overdue_days if d <= days_overdue]
            if reached and days_overdue - max(reached) <= CATCH_UP_DAYS:
                drafts.append(services.NoticeDraft(
                    organization=organization, type="invoice_overdue", account=account,
                    key=f"{invoice.public_id}:{invoice.due_date.isoformat()}:{max(reached)}",
                    context={"invoice": invoice_context, "days_overdue": days_overdue}))
                run.count("overdue")
        # The customer pays from the hosted invoice page, when an app serves one.
        pages = links.links_for("invoice", ((d.organization.pk, d.context["invoice"]["id"]) for d in drafts))
        for draft in drafts:
            draft.link = pages.get((draft.organization.pk, draft.context["invoice"]["id"]), "")
        services.enqueue_notices(drafts)

    run.process(list(ids), handle, batch_size=BATCH)


def prune_sent_notices(as_of: datetime) -> int:
    """retention-cleanup: sent or failed e-mails and webhooks older than COBRADOR_RETENTION_NOTICE_DAYS.
    In-app notices are the customer's inbox: kept."""
    return delete_in_batches(Notice.objects.filter(
        channel__in=["email", "webhook"], status__in=["sent", "failed"],
        created_at__lt=as_of - timedelta(days=settings.RETENTION_DAYS["notices"])))
