"""`cobrador usage rebuild --org ORG [--dry-run]`: rebuild an organization's MRR ledger from its
subscriptions' history (usage/rebuild.py) and print what was rebuilt and what could not be."""

from django.db import transaction

from cobrador.core.commandline import CommandFailed
from cobrador.organizations.models import Organization
from cobrador.usage.rebuild import rebuild_ledger

SHOWN = 20  # the first cases of each kind are listed; the count says how many there are


def _listed(title: str, items: list, describe) -> list[str]:
    if not items:
        return []
    lines = [f"{title}: {len(items)}"]
    lines += [f"  {describe(item)}" for item in items[:SHOWN]]
    if len(items) > SHOWN:
        lines.append(f"  ... and {len(items) - SHOWN} more")
    return lines


def usage_rebuild(args) -> int:
    try:
        organization = Organization.objects.get(public_id=args.org)
    except Organization.DoesNotExist:
        raise CommandFailed(f"no organization {args.org!r}") from None
    with transaction.atomic():
        report = rebuild_ledger(organization=organization, write=not args.dry_run)
    print(f"organization {report.organization}: {report.events_replayed} events replayed, "
          f"{report.movements_after} movements rebuilt (the ledger had {report.movements_before}), "
          f"{report.customers} customers who ever paid")
    for line in (
            _listed("customers whose MRR now differs from the old ledger's", report.differing_customers, str)
            + _listed("cannot rebuild from creation: history starts at the oldest surviving event "
                      "(earlier events were pruned)", report.history_starts_late,
                      lambda item: f"{item[0]}: from {item[1].isoformat()}")
            + _listed("cannot place in time: no event at all, entered at its start with its state now",
                      report.placed_at_start, str)
            + _listed("replay ended away from the subscriptions now: corrected by a movement at the rebuild's time",
                      report.corrected, lambda item: f"{item[0]}: replayed {item[1]}, now {item[2]}")):
        print(line)
    if report.written:
        print(f"ledger replaced; snapshots recomputed: {report.days} days, {report.months} months")
    else:
        print("dry run: nothing changed")
    return 0
