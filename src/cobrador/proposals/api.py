from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Prefetch
from django.http import Http404
from django.shortcuts import get_object_or_404
from ninja import Query, Router, Status

from cobrador.catalog.errors import CouponNotRedeemable
from cobrador.core import clock
from cobrador.core.errors import ValidationFailed, errors
from cobrador.core.operations import register_path_id
from cobrador.core.pagination import paginate
from cobrador.core.params import Limit
from cobrador.proposals import analytics, services
from cobrador.proposals.errors import (
    ProposalClosed,
    ProposalExpired,
    ProposalNotEditable,
    ProposalNotOpen,
    ProposalNotSendable,
)
from cobrador.proposals.models import Proposal, ProposalLine
from cobrador.proposals.schemas import (
    ProposalAnalyticsOut,
    ProposalCreate,
    ProposalDecline,
    ProposalOut,
    ProposalPage,
    ProposalSettingsOut,
    ProposalSettingsUpdate,
    ProposalStatus,
    ProposalUpdate,
)
from cobrador.subscriptions.errors import BillingAccountNotActive

router = Router(tags=["proposals"])
register_path_id("proposal_id", Proposal)
ANALYTICS_DEFAULT_DAYS = 30


def _proposals(request):
    lines = ProposalLine.objects.select_related("plan", "coupon", "subscription").order_by("position")
    return (Proposal.objects.filter(organization=request.auth).select_related(*services.RELATED)
            .prefetch_related(Prefetch("lines", queryset=lines)))


def _locked(request, proposal_id: str) -> Proposal:
    """The proposal, row-locked for the rest of the transaction (the sweeps lock it too)."""
    proposal = services.lock_proposal(Proposal.objects.filter(organization=request.auth), public_id=proposal_id)
    if proposal is None:
        raise Http404
    return proposal


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValidationFailed("a date-time with a timezone is required", field=field)
    return value


@router.post("/proposals", response={201: ProposalOut}, summary="Create a proposal")
def create_proposal(request, payload: ProposalCreate):
    """A draft. Give `account` (an existing ba_ id) or `prospect`; `expires_on` is the last valid day
    in the organization's time zone, from today to 366 days ahead."""
    data = payload.model_dump()
    with transaction.atomic():
        proposal = services.create_proposal(organization=request.auth, **data)
    return Status(201, services.proposal_data(proposal))


@router.get("/proposals", response=ProposalPage, summary="List proposals")
def list_proposals(request, status: ProposalStatus | None = None, account: str | None = None,
                   sent_at_gte: datetime | None = None, sent_at_lt: datetime | None = None,
                   expires_on_lte: str | None = None, limit: Limit = 20, cursor: str | None = None):
    """Newest first. Filters: `status`, `account` (ba_ id), `sent_at_gte` <= sent_at < `sent_at_lt`
    (ISO 8601 with a timezone), `expires_on_lte` (YYYY-MM-DD)."""
    proposals = _proposals(request)
    if status:
        proposals = proposals.filter(status=status)
    if account:
        proposals = proposals.filter(account__public_id=account)
    if _aware(sent_at_gte, "sent_at_gte"):
        proposals = proposals.filter(sent_at__gte=sent_at_gte)
    if _aware(sent_at_lt, "sent_at_lt"):
        proposals = proposals.filter(sent_at__lt=sent_at_lt)
    if expires_on_lte:
        try:
            proposals = proposals.filter(expires_on__lte=datetime.strptime(expires_on_lte, "%Y-%m-%d").date())
        except ValueError:
            raise ValidationFailed("a date YYYY-MM-DD is required", field="expires_on_lte") from None
    return paginate(proposals, cursor=cursor, limit=limit, serialize=services.proposal_data)


@router.get("/proposals/{proposal_id}", response=ProposalOut, summary="Retrieve a proposal")
def get_proposal(request, proposal_id: str):
    return services.proposal_data(get_object_or_404(_proposals(request), public_id=proposal_id))


@router.patch("/proposals/{proposal_id}", response={200: ProposalOut, **errors(ProposalNotEditable)},
              summary="Edit a draft")
def update_proposal(request, proposal_id: str, payload: ProposalUpdate):
    """Only a draft (else a 409 `proposal_not_editable`); `lines` replaces every line."""
    with transaction.atomic():
        proposal = services.update_proposal(proposal=_locked(request, proposal_id),
                                            changes=payload.model_dump(exclude_unset=True))
    return services.proposal_data(proposal)


@router.post("/proposals/{proposal_id}/send",
             response={200: ProposalOut, **errors(ProposalExpired, ProposalNotSendable)},
             summary="Send a proposal")
def send_proposal(request, proposal_id: str):
    """draft -> sent, and proposal.sent goes out: the customer is e-mailed the link to the proposal page.
    Sending an open proposal again re-sends the e-mail. A proposal past its last valid day is a 409
    `proposal_expired`; a closed one a 409 `proposal_not_sendable`."""
    with transaction.atomic():
        proposal = services.send_proposal(proposal=_locked(request, proposal_id))
    return services.proposal_data(proposal)


@router.post("/proposals/{proposal_id}/accept",
             response={200: ProposalOut, **errors(ProposalExpired, ProposalClosed, ProposalNotOpen,
                                                  BillingAccountNotActive, CouponNotRedeemable)},
             summary="Accept a proposal on the customer's behalf")
def accept_proposal(request, proposal_id: str):
    """Creates the prospect's billing account and one subscription per line, in one transaction;
    proposal.accepted and subscription.created go out. Accepting twice changes nothing the second time.
    409s: `proposal_expired` (past its last valid day), `proposal_closed` (declined or canceled),
    `proposal_not_open` (a draft)."""
    with transaction.atomic():
        proposal = services.accept_proposal(proposal=_locked(request, proposal_id))
    return services.proposal_data(proposal)


@router.post("/proposals/{proposal_id}/decline",
             response={200: ProposalOut, **errors(ProposalExpired, ProposalClosed, ProposalNotOpen)},
             summary="Decline a proposal on the customer's behalf")
def decline_proposal(request, proposal_id: str, payload: ProposalDecline | None = None):
    payload = payload or ProposalDecline()
    with transaction.atomic():
        proposal = services.decline_proposal(proposal=_locked(request, proposal_id), reason=payload.reason)
    return services.proposal_data(proposal)


@router.post("/proposals/{proposal_id}/cancel", response={200: ProposalOut, **errors(ProposalClosed)},
             summary="Withdraw a proposal")
def cancel_proposal(request, proposal_id: str):
    """A draft, sent or viewed proposal is canceled (409 `proposal_closed` otherwise)."""
    with transaction.atomic():
        proposal = services.cancel_proposal(proposal=_locked(request, proposal_id))
    return services.proposal_data(proposal)


@router.get("/organizations/settings/proposals", response=ProposalSettingsOut, summary="Proposal settings")
def get_proposal_settings(request):
    return services.settings_data(services.proposal_settings(request.auth))


@router.patch("/organizations/settings/proposals", response=ProposalSettingsOut,
              summary="Change proposal settings")
def update_proposal_settings(request, payload: ProposalSettingsUpdate):
    """`reminder_days`: the days before the last valid day on which proposal-reminder reminds the
    customer (default [3, 1]; [] turns reminders off)."""
    with transaction.atomic():
        settings = services.update_proposal_settings(organization=request.auth, reminder_days=payload.reminder_days)
    return services.settings_data(settings)


@router.get("/analytics/proposals", response=ProposalAnalyticsOut, by_alias=True,
            summary="Proposal conversion and timing")
def proposal_analytics(request, date_from: datetime | None = Query(None, alias="from"),
                       date_to: datetime | None = Query(None, alias="to")):
    """`from` and `to` are ISO 8601 date-times with a timezone; default: the last 30 days."""
    end = _aware(date_to, "to") or clock.now()
    start = _aware(date_from, "from") or end - timedelta(days=ANALYTICS_DEFAULT_DAYS)
    if start >= end:
        raise ValidationFailed("from must be before to", field="from")
    return analytics.proposal_analytics(organization=request.auth, start=start, end=end)
