"""The hosted proposal page: the offer, its validity, accept and decline. Every view and click is
recorded through proposals.services; acceptance runs the same service as POST /v1/proposals/{id}/accept."""

from django.db import transaction
from django.shortcuts import redirect
from django.views.decorators.http import require_GET, require_POST

from cobrador.core import clock
from cobrador.core.errors import ApiError
from cobrador.notifications import formatting
from cobrador.pages import links
from cobrador.pages.views.common import not_found, render_page
from cobrador.proposals import services
from cobrador.proposals.models import Proposal
from cobrador.subscriptions.models import Subscription


def _proposal(link, *, lock: bool) -> Proposal | None:
    lookup = {"organization_id": link.organization_id, "public_id": link.object_id}
    if lock:
        return services.lock_proposal(Proposal.objects.all(), **lookup)
    return Proposal.objects.select_related(*services.RELATED).filter(**lookup).first()


def _locale(proposal: Proposal) -> str:
    return proposal.account.locale if proposal.account_id else proposal.prospect_locale


def _render(request, proposal: Proposal, token: str, *, error: str = "", status: int = 200):
    locale, data = _locale(proposal), services.proposal_data(proposal)
    currency = proposal.currency
    money = lambda amount: formatting.money(amount, currency, locale)  # noqa: E731
    lines = [{**line, "amount_text": money(line["amount"]), "unit_amount_text": money(line["unit_amount"]),
              "plan_amount_text": money(line["plan_amount"]),
              "special_price": line["price_override"] is not None and line["price_override"] != line["plan_amount"],
              "discount_text": money(line["discount"]) if line["discount"] else ""} for line in data["lines"]]
    past_validity = services.is_past_validity(proposal, clock.now())
    state = "expired" if proposal.status == "expired" or (proposal.status in services.OPEN_STATUSES and past_validity) \
        else proposal.status
    subscriptions = list(Subscription.objects.filter(public_id__in=data["subscriptions"],
                                                     organization_id=proposal.organization_id)
                         .select_related("plan").order_by("pk")) if data["subscriptions"] else []
    context = {
        "proposal": data, "lines": lines, "state": state, "token": token, "error": error,
        "customer_name": proposal.account.name if proposal.account_id else proposal.prospect_name,
        "subtotal": money(proposal.subtotal), "discount": money(proposal.discount) if proposal.discount else "",
        "total": money(proposal.total), "expires_on": formatting.day(proposal.expires_on, locale),
        "subscriptions": [{"id": s.public_id, "plan_name": s.plan.name, "status": s.status} for s in subscriptions],
    }
    return render_page(request, "pages/proposal.html", organization=proposal.organization, locale=locale,
                       context=context, status=status)


@require_GET
def proposal_page(request, token: str):
    link = links.resolve_for(request, "proposal", token)
    if link is None:
        return not_found(request)
    with transaction.atomic():
        proposal = _proposal(link, lock=True)
        if proposal is None or proposal.status == "draft":
            return not_found(request)
        services.record_view(proposal=proposal, user_agent=request.headers.get("User-Agent", ""))
    return _render(request, proposal, token)


@require_POST
def proposal_action(request, token: str, action: str):
    link = links.resolve_for(request, "proposal", token)
    if link is None or action not in ("accept", "decline"):
        return not_found(request)
    user_agent = request.headers.get("User-Agent", "")
    with transaction.atomic():  # the click is kept even when the answer is refused
        proposal = _proposal(link, lock=True)
        if proposal is None or proposal.status == "draft":
            return not_found(request)
        services.record_click(proposal=proposal, kind=action, user_agent=user_agent)
    try:
        with transaction.atomic():
            proposal = _proposal(link, lock=True)
            if action == "accept":
                services.accept_proposal(proposal=proposal)
            else:
                services.decline_proposal(proposal=proposal, reason=request.POST.get("reason", "")[:500])
    except ApiError as exc:
        return _render(request, _proposal(link, lock=False), token, error=exc.type, status=exc.status)
    return redirect("pages:proposal", token=token)
