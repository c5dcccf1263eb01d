"""The usage event sink: every event that may change a customer's MRR recomputes that customer's MRR
inside the transaction that recorded it, and a movement goes into the ledger when it moved.

When the MRR changed: see `effective_at` in usage/services.py.
"""

from cobrador.customers.models import BillingAccount
from cobrador.events.services import register_sink
from cobrador.subscriptions.models import Subscription
from cobrador.usage.services import ACCOUNT_EVENTS, SUBSCRIPTION_EVENTS, Change, effective_at, record_mrr_changes


def react_to_events(events) -> None:
    relevant = [e for e in events if e.type in SUBSCRIPTION_EVENTS or e.type in ACCOUNT_EVENTS]
    if not relevant:
        return
    by_ref = {}
    for event in relevant:
        if isinstance(event.data.get("id"), str):
            by_ref[(event.organization_id, event.data["id"])] = event
    subscription_refs = [ref for (_, ref) in by_ref if ref.startswith("sub_")]
    account_refs = [ref for (_, ref) in by_ref if not ref.startswith("sub_")]
    owners = []
    if subscription_refs:
        owners += Subscription.objects.filter(public_id__in=subscription_refs).values_list(
            "organization_id", "public_id", "account_id")
    if account_refs:
        owners += BillingAccount.objects.filter(public_id__in=account_refs).values_list(
            "organization_id", "public_id", "pk")
    changes: dict[int, Change] = {}
    for organization_id, ref, account_id in owners:
        event = by_ref.get((organization_id, ref))
        if event is None:
            continue
        change = Change(occurred_at=effective_at(event), cause_event=event.public_id, cause=ref)
        # Several events of one customer in one batch: the latest moment stands for all of them.
        if account_id not in changes or change.occurred_at >= changes[account_id].occurred_at:
            changes[account_id] = change
    record_mrr_changes(changes=changes)


register_sink(react_to_events)
