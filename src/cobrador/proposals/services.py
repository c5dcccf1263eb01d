"""Proposals: create, edit a draft, send, record views, accept, decline, cancel. Services never commit:
callers do, and every check runs before any write, so a rejected request changes nothing.

Acceptance turns the proposal into business in the caller's transaction: the prospect becomes a billing
account (customers.services) and each line a subscription (subscriptions.services). It runs on the
proposal row locked by the caller (`lock_proposal`), and only from `sent` or `viewed`, so two clicks at
once, or a click racing the expiration sweep, leave exactly one outcome.
"""

import hashlib
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.db.models import Max, Q

from cobrador.catalog.models import Coupon, Plan
from cobrador.catalog.services import coupon_applies_to, coupon_discount, coupon_is_redeemable
from cobrador.core import clock
from cobrador.core.errors import ValidationFailed
from cobrador.customers.documents import InvalidDocument, normalize_document
from cobrador.customers.models import BillingAccount
from cobrador.customers.services import create_billing_account
from cobrador.events.services import record_event
from cobrador.organizations.models import Organization
from cobrador.proposals.errors import (
    ProposalClosed,
    ProposalExpired,
    ProposalNotEditable,
    ProposalNotOpen,
    ProposalNotSendable,
)
from cobrador.proposals.models import Proposal, ProposalLine, ProposalSettings, ProposalView
from cobrador.subscriptions.services import (
    MAX_COMMITMENT_MONTHS,
    MAX_TRIAL_DAYS,
    MAX_UNIT_AMOUNT,
    create_subscription,
)

OPEN_STATUSES = ("sent", "viewed")
CLOSED_STATUSES = ("accepted", "declined", "expired", "canceled")
MAX_LINES = 20
MAX_VALIDITY_DAYS = 366
MAX_PROPOSAL_AMOUNT = 10**15  # per period, over all lines: far below what the integer columns hold
RELATED = ("organization", "account")


# --- time: the last valid day is a day of the organization's calendar --------------------------------------


def local_today(organization, at: datetime) -> date:
    return at.astimezone(ZoneInfo(organization.timezone)).date()


def end_of_validity(organization, expires_on: date) -> datetime:
    """The first moment the proposal is no longer valid: the local midnight after its last valid day."""
    return datetime.combine(expires_on + timedelta(days=1), time(), tzinfo=ZoneInfo(organization.timezone))


def is_past_validity(proposal: Proposal, at: datetime) -> bool:
    return local_today(proposal.organization, at) > proposal.expires_on


# --- the API object ---------------------------------------------------------------------------------------


def line_data(line: ProposalLine) -> dict:
    return {
        "plan": line.plan.public_id,
        "plan_name": line.plan.name,
        "interval": line.plan.interval,
        "interval_count": line.plan.interval_count,
        "quantity": line.quantity,
        "plan_amount": line.plan.amount,
        "unit_amount": line.unit_amount,
        "price_override": line.price_override,
        "amount": line.amount,
        "coupon": line.coupon.public_id if line.coupon_id else None,
        "discount": line.discount,
        "commitment_months": line.commitment_months,
        "trial_days": line.trial_days,
        "subscription": line.subscription.public_id if line.subscription_id else None,
    }


def proposal_lines(proposal: Proposal) -> list[ProposalLine]:
    cached = getattr(proposal, "_prefetched_objects_cache", {}).get("lines")
    if cached is not None:
        return list(cached)
    return list(proposal.lines.select_related("plan", "coupon", "subscription").order_by("position"))


def proposal_data(proposal: Proposal) -> dict:
    """The proposal as the API returns it (and as proposal.* events carry it)."""
    p = proposal
    lines = proposal_lines(p)
    return {
        "id": p.public_id,
        "object": "proposal",
        "number": p.number,
        "account": p.account.public_id if p.account_id else None,
        "prospect": None if p.account_id else {
            "name": p.prospect_name, "email": p.prospect_email, "document": p.prospect_document or None,
            "locale": p.prospect_locale},
        "email": p.account.email if p.account_id else p.prospect_email,
        "currency": p.currency,
        "lines": [line_data(line) for line in lines],
        "subtotal": p.subtotal,
        "discount": p.discount,
        "total": p.total,
        "expires_on": p.expires_on,
        "expires_at": end_of_validity(p.organization, p.expires_on),
        "message": p.message,
        "status": p.status,
        "sent_at": p.sent_at,
        "first_viewed_at": p.first_viewed_at,
        "last_viewed_at": p.last_viewed_at,
        "view_count": p.view_count,
        "accepted_at": p.accepted_at,
        "declined_at": p.declined_at,
        "decline_reason": p.decline_reason or None,
        "expired_at": p.expired_at,
        "canceled_at": p.canceled_at,
        "subscriptions": [line.subscription.public_id for line in lines if line.subscription_id],
        "metadata": p.metadata,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
    }


def lock_proposal(proposals, **lookup) -> Proposal | None:
    """The proposal of `proposals` matching `lookup`, row-locked for the rest of the transaction, then
    loaded with its organization and account. The joins are read after the lock: on PostgreSQL a row
    joined in the locking query keeps its version from before the wait, so a second click waiting on
    the first would see the account the first one created as missing."""
    pk = proposals.select_for_update().filter(**lookup).values_list("pk", flat=True).first()
    return Proposal.objects.select_related(*RELATED).get(pk=pk) if pk is not None else None


def _emit(proposal: Proposal, type_: str) -> None:
    record_event(organization=proposal.organization, type=type_, data=proposal_data(proposal))


# --- validation of the terms (422 naming the field) ---------------------------------------------------------


def _plan(organization, plan_id: str, field: str) -> Plan:
    plan = Plan.objects.filter(organization=organization, public_id=plan_id).first()
    if plan is None:
        raise ValidationFailed(f"no plan {plan_id!r}", field=field)
    if not plan.active:
        raise ValidationFailed(f"plan {plan_id!r} is archived", field=field)
    return plan


def _coupon(organization, code_or_id: str, field: str) -> Coupon:
    coupon = (Coupon.objects.filter(organization=organization).prefetch_related("plans")
              .filter(Q(public_id=code_or_id) | Q(code=code_or_id)).first())
    if coupon is None:
        raise ValidationFailed(f"no coupon {code_or_id!r}", field=field)
    return coupon


def _lines(organization, lines: list[dict], as_of: datetime) -> list[ProposalLine]:
    if not 1 <= len(lines) <= MAX_LINES:
        raise ValidationFailed(f"a proposal has 1-{MAX_LINES} lines", field="lines")
    built = []
    for i, line in enumerate(lines):
        plan = _plan(organization, line["plan"], f"lines.{i}.plan")
        quantity = line.get("quantity", 1)
        if quantity < 1:
            raise ValidationFailed("quantity must be at least 1", field=f"lines.{i}.quantity")
        commitment = line.get("commitment_months", 0) or 0
        if not 0 <= commitment <= MAX_COMMITMENT_MONTHS or commitment % plan.months_per_period:
            raise ValidationFailed(f"commitment_months must be 0-{MAX_COMMITMENT_MONTHS} and a whole number of "
                                   f"the plan's {plan.months_per_period}-month periods",
                                   field=f"lines.{i}.commitment_months")
        trial_days = line.get("trial_days")
        if trial_days is not None and not 0 <= trial_days <= MAX_TRIAL_DAYS:
            raise ValidationFailed(f"trial_days must be 0-{MAX_TRIAL_DAYS}", field=f"lines.{i}.trial_days")
        coupon = _coupon(organization, line["coupon"], f"lines.{i}.coupon") if line.get("coupon") else None
        if coupon is not None and not (coupon_is_redeemable(coupon, as_of) and coupon_applies_to(coupon, plan)):
            raise ValidationFailed(f"coupon {line['coupon']!r} cannot be redeemed on plan {plan.public_id}",
                                   field=f"lines.{i}.coupon")
        override = line.get("unit_amount")
        if override is not None and not 0 <= override <= MAX_UNIT_AMOUNT:
            raise ValidationFailed(f"unit_amount must be 0-{MAX_UNIT_AMOUNT} minor units",
                                   field=f"lines.{i}.unit_amount")
        unit_amount = plan.amount if override is None else override
        amount = unit_amount * quantity
        built.append(ProposalLine(position=i, plan=plan, quantity=quantity, coupon=coupon,
                                  commitment_months=commitment, trial_days=trial_days, unit_amount=unit_amount,
                                  price_override=override, amount=amount,
                                  discount=coupon_discount(coupon, amount) if coupon else 0))
    if sum(line.amount for line in built) > MAX_PROPOSAL_AMOUNT:
        raise ValidationFailed(f"the lines add up to more than {MAX_PROPOSAL_AMOUNT} minor units", field="lines")
    currencies = {line.plan.currency for line in built}
    if len(currencies) > 1:
        raise ValidationFailed(f"every plan of a proposal bills in one currency, not {sorted(currencies)}",
                               field="lines")
    return built


def _check_expires_on(organization, expires_on: date, now: datetime) -> None:
    today = local_today(organization, now)
    if not today <= expires_on <= today + timedelta(days=MAX_VALIDITY_DAYS):
        raise ValidationFailed(f"expires_on must be a day from today ({today.isoformat()}, in "
                               f"{organization.timezone}) to {MAX_VALIDITY_DAYS} days ahead", field="expires_on")


def _prospect_document(document: str | None) -> str:
    if not document:
        return ""
    try:
        return normalize_document(document)[0]
    except InvalidDocument as exc:
        raise ValidationFailed(f"document: {exc}", field="prospect.document") from exc


def _customer_fields(organization, account: str | None, prospect: dict | None) -> dict:
    if (account is None) == (prospect is None):
        raise ValidationFailed("give either account (an existing billing account) or prospect", field="account")
    if account is not None:
        found = BillingAccount.objects.filter(organization=organization, public_id=account).first()
        if found is None:
            raise ValidationFailed(f"no billing account {account!r}", field="account")
        return {"account": found, "prospect_name": "", "prospect_email": "", "prospect_document": "",
                "prospect_locale": found.locale}
    return {"account": None, "prospect_name": prospect["name"], "prospect_email": prospect["email"],
            "prospect_document": _prospect_document(prospect.get("document")),
            "prospect_locale": prospect.get("locale") or "pt-BR"}


def _apply_totals(proposal: Proposal, lines: list[ProposalLine]) -> None:
    proposal.currency = lines[0].plan.currency
    proposal.subtotal = sum(line.amount for line in lines)
    proposal.discount = sum(line.discount for line in lines)
    proposal.total = proposal.subtotal - proposal.discount


def _save_lines(proposal: Proposal, lines: list[ProposalLine]) -> None:
    for line in lines:
        line.proposal = proposal
    ProposalLine.objects.bulk_create(lines)
    proposal._prefetched_objects_cache = {"lines": lines}  # noqa: SLF001 - Django's prefetch cache: no re-read


# --- use cases -----------------------------------------------------------------------------------------------


def create_proposal(*, organization, lines: list[dict], expires_on: date, account: str | None = None,
                    prospect: dict | None = None, message: str = "", metadata: dict | None = None) -> Proposal:
    now = clock.now()
    customer = _customer_fields(organization, account, prospect)
    built = _lines(organization, lines, now)
    _check_expires_on(organization, expires_on, now)
    # The organization row lock serializes numbering (the unique constraint backs it).
    Organization.objects.select_for_update().filter(pk=organization.pk).exists()
    number = (Proposal.objects.filter(organization=organization).aggregate(n=Max("number"))["n"] or 0) + 1
    proposal = Proposal(organization=organization, number=number, expires_on=expires_on, message=message,
                        metadata=metadata or {}, created_at=now, updated_at=now, **customer)
    _apply_totals(proposal, built)
    proposal.save()
    _save_lines(proposal, built)
    return proposal


def update_proposal(*, proposal: Proposal, changes: dict) -> Proposal:
    """A draft only. `changes` may hold lines (replacing them all), expires_on, account or prospect,
    message, metadata."""
    if proposal.status != "draft":
        raise ProposalNotEditable(f"only a draft can be edited; this proposal is {proposal.status}", field="status")
    organization = proposal.organization
    now = clock.now()
    customer = None
    if "account" in changes or "prospect" in changes:
        customer = _customer_fields(organization, changes.get("account"), changes.get("prospect"))
    built = _lines(organization, changes["lines"], now) if changes.get("lines") is not None else None
    if changes.get("expires_on") is not None:
        _check_expires_on(organization, changes["expires_on"], now)
        proposal.expires_on = changes["expires_on"]
    for field, value in (customer or {}).items():
        setattr(proposal, field, value)
    if changes.get("message") is not None:
        proposal.message = changes["message"]
    if changes.get("metadata") is not None:
        proposal.metadata = changes["metadata"]
    if built is not None:
        _apply_totals(proposal, built)
        proposal.lines.all().delete()
    proposal.updated_at = now
    proposal.save()
    if built is not None:
        _save_lines(proposal, built)
    return proposal


def send_proposal(*, proposal: Proposal) -> Proposal:
    """draft → sent; proposal.sent goes out (the notifications app e-mails the link from it). Sending a
    sent or viewed proposal again re-sends the e-mail with another proposal.sent."""
    now = clock.now()
    if proposal.status not in ("draft", *OPEN_STATUSES):
        raise ProposalNotSendable(f"the proposal is {proposal.status}", field="status")
    if is_past_validity(proposal, now):
        raise ProposalExpired(f"the proposal's last valid day ({proposal.expires_on.isoformat()}) has passed",
                              field="expires_on")
    if proposal.status == "draft":
        proposal.status = "sent"
        proposal.sent_at = now
    proposal.updated_at = now
    proposal.save(update_fields=["status", "sent_at", "updated_at"])
    _emit(proposal, "proposal.sent")
    return proposal


def record_view(*, proposal: Proposal, user_agent: str = "") -> Proposal:
    """A customer opened the hosted page. The first view of a sent proposal makes it `viewed` and sends
    proposal.viewed; every view is counted and kept."""
    now = clock.now()
    ProposalView.objects.create(proposal=proposal, kind="view", at=now, user_agent_hash=_ua_hash(user_agent))
    if proposal.status == "draft":
        return proposal
    proposal.view_count += 1
    proposal.last_viewed_at = now
    fields = ["view_count", "last_viewed_at"]
    first = proposal.first_viewed_at is None
    if first:
        proposal.first_viewed_at = now
        fields.append("first_viewed_at")
    if proposal.status == "sent" and not is_past_validity(proposal, now):
        proposal.status = "viewed"
        proposal.updated_at = now
        fields += ["status", "updated_at"]
    proposal.save(update_fields=fields)
    if first:
        _emit(proposal, "proposal.viewed")
    return proposal


def record_click(*, proposal: Proposal, kind: str, user_agent: str = "") -> None:
    ProposalView.objects.create(proposal=proposal, kind=kind, at=clock.now(), user_agent_hash=_ua_hash(user_agent))


def _ua_hash(user_agent: str) -> str:
    return hashlib.sha256(user_agent.encode()).hexdigest() if user_agent else ""


def _require_open(proposal: Proposal, now: datetime) -> None:
    if proposal.status == "draft":
        raise ProposalNotOpen("the proposal has not been sent", field="status")
    if proposal.status == "expired" or (proposal.status in OPEN_STATUSES and is_past_validity(proposal, now)):
        raise ProposalExpired(f"the proposal expired: its last valid day was {proposal.expires_on.isoformat()}",
                              field="expires_on")
    if proposal.status in CLOSED_STATUSES:
        raise ProposalClosed(f"the proposal is {proposal.status}", field="status")


def accept_proposal(*, proposal: Proposal) -> Proposal:
    """sent/viewed → accepted: the prospect becomes a billing account and every line a subscription,
    in the caller's transaction. Accepting an accepted proposal again returns it unchanged (a second
    click), creating nothing."""
    if proposal.status == "accepted":
        return proposal
    now = clock.now()
    _require_open(proposal, now)
    organization = proposal.organization
    if proposal.account_id is None:
        proposal.account = create_billing_account(
            organization=organization, name=proposal.prospect_name, email=proposal.prospect_email,
            document=proposal.prospect_document or None, locale=proposal.prospect_locale,
            metadata={"proposal": proposal.public_id})
    lines = proposal_lines(proposal)
    for line in lines:
        line.subscription = create_subscription(
            organization=organization, account=proposal.account.public_id, plan=line.plan.public_id,
            quantity=line.quantity, coupon=line.coupon.public_id if line.coupon_id else None,
            trial_days=line.trial_days, commitment_months=line.commitment_months,
            unit_amount=line.price_override, metadata={"proposal": proposal.public_id})
    ProposalLine.objects.bulk_update(lines, ["subscription"])
    proposal.status = "accepted"
    proposal.accepted_at = now
    proposal.updated_at = now
    proposal.save(update_fields=["status", "accepted_at", "account", "updated_at"])
    _emit(proposal, "proposal.accepted")
    return proposal


def decline_proposal(*, proposal: Proposal, reason: str = "") -> Proposal:
    if proposal.status == "declined":
        return proposal
    now = clock.now()
    _require_open(proposal, now)
    proposal.status = "declined"
    proposal.declined_at = now
    proposal.decline_reason = reason
    proposal.updated_at = now
    proposal.save(update_fields=["status", "declined_at", "decline_reason", "updated_at"])
    _emit(proposal, "proposal.declined")
    return proposal


def cancel_proposal(*, proposal: Proposal) -> Proposal:
    """The seller withdraws a draft or an open proposal."""
    if proposal.status == "canceled":
        return proposal
    if proposal.status not in ("draft", *OPEN_STATUSES):
        raise ProposalClosed(f"the proposal is {proposal.status}", field="status")
    now = clock.now()
    was_draft = proposal.status == "draft"
    proposal.status = "canceled"
    proposal.canceled_at = now
    proposal.updated_at = now
    proposal.save(update_fields=["status", "canceled_at", "updated_at"])
    if not was_draft:  # a draft was never out: nobody to tell
        _emit(proposal, "proposal.canceled")
    return proposal


# --- settings ------------------------------------------------------------------------------------------------


def proposal_settings(organization) -> ProposalSettings:
    found = ProposalSettings.objects.filter(organization=organization).first()
    if found is not None:
        return found
    return ProposalSettings(organization=organization, reminder_days=list(ProposalSettings.DEFAULT_REMINDER_DAYS),
                            updated_at=organization.created_at)


def settings_data(settings: ProposalSettings) -> dict:
    return {"object": "proposal_settings", "reminder_days": settings.reminder_days,
            "updated_at": settings.updated_at}


def update_proposal_settings(*, organization, reminder_days: list[int]) -> ProposalSettings:
    days = sorted(set(reminder_days), reverse=True)
    if len(days) > 5 or any(not 1 <= d <= 60 for d in days):
        raise ValidationFailed("reminder_days: up to 5 distinct days, each 1-60", field="reminder_days")
    settings, _ = ProposalSettings.objects.update_or_create(
        organization=organization, defaults={"reminder_days": days, "updated_at": clock.now()})
    return settings
