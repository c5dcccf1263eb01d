"""GET /v1/analytics/proposals: how proposals convert, from their own timestamps.

The cohort is the proposals sent in [from, to). `open` ones (sent or viewed) have no outcome yet, so
the conversion rate counts only closed ones: accepted / (accepted + declined + expired); a proposal the
seller canceled is no customer's answer and is left out of it. Durations run from `sent_at` to
`first_viewed_at` and to `accepted_at`, in seconds: mean, median and p90 (nearest rank: the smallest
value with at least 90% of the values at or below it). `by_month` splits the cohort by the month it was
sent in the organization's time zone.
"""

import math
import statistics
from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from cobrador.proposals.models import Proposal

OUTCOMES = ("accepted", "declined", "expired", "canceled")


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.9 * len(ordered)) - 1]


def duration_stats(seconds: list[float]) -> dict:
    if not seconds:
        return {"count": 0, "mean_seconds": None, "median_seconds": None, "p90_seconds": None}
    return {"count": len(seconds), "mean_seconds": round(statistics.fmean(seconds)),
            "median_seconds": round(statistics.median(seconds)), "p90_seconds": round(_p90(seconds))}


def _counts(rows: list) -> dict:
    counts = {"sent": len(rows), "viewed": sum(1 for r in rows if r.first_viewed_at is not None),
              "open": sum(1 for r in rows if r.status in ("sent", "viewed"))}
    for outcome in OUTCOMES:
        counts[outcome] = sum(1 for r in rows if r.status == outcome)
    closed = counts["accepted"] + counts["declined"] + counts["expired"]
    counts["conversion_rate"] = _rate(counts["accepted"], closed)
    return counts


def proposal_analytics(*, organization, start: datetime, end: datetime) -> dict:
    rows = list(Proposal.objects.filter(organization=organization, sent_at__gte=start, sent_at__lt=end)
                .order_by("sent_at").values_list("status", "sent_at", "first_viewed_at", "accepted_at", named=True))
    zone = ZoneInfo(organization.timezone)
    months = defaultdict(list)
    for row in rows:
        months[row.sent_at.astimezone(zone).strftime("%Y-%m")].append(row)
    return {
        "object": "proposal_analytics",
        "from": start,
        "to": end,
        **_counts(rows),
        "time_to_first_view": duration_stats([(r.first_viewed_at - r.sent_at).total_seconds()
                                              for r in rows if r.first_viewed_at is not None]),
        "time_to_acceptance": duration_stats([(r.accepted_at - r.sent_at).total_seconds()
                                              for r in rows if r.accepted_at is not None]),
        "by_month": [{"month": month, **_counts(month_rows)} for month, month_rows in sorted(months.items())],
    }
