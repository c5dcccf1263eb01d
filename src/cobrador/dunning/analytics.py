"""GET /v1/analytics/recovery: how well dunning recovers failed payments, from the RecoveryRecords.

The cohort is the invoices whose first charge failed (attempt 0) in [from, to). An invoice of the
cohort is recovered once it is paid, whoever paid it; the recovery is credited to the attempt and
method of the record whose payment paid it, or counted as `recovered_outside_retries` (a payment
through POST /v1/invoices/{id}/pay, or a boleto/PIX of the first charge).
"""

import statistics
from collections import Counter, defaultdict
from datetime import datetime

from cobrador.dunning.models import RecoveryRecord
from cobrador.invoicing.models import Invoice
from cobrador.payments.models import Payment


def _rate(recovered: int, total: int) -> float | None:
    return round(recovered / total, 4) if total else None


def recovery_analytics(*, organization, start: datetime, end: datetime) -> dict:
    first_failures = {r.invoice_id: r for r in RecoveryRecord.objects.filter(
        organization=organization, attempt_number=0, attempted_at__gte=start, attempted_at__lt=end)}
    invoice_ids = list(first_failures)
    paid = dict(Invoice.objects.filter(pk__in=invoice_ids, status="paid").values_list("pk", "paid_at"))

    # The payment that paid each recovered invoice: the first one to succeed.
    paying = {}
    for invoice_id, payment_id in (Payment.objects.filter(invoice_id__in=list(paid), paid_at__isnull=False,
                                                          status__in=("succeeded", "refunded"))
                                   .order_by("-paid_at", "-pk").values_list("invoice_id", "pk")):
        paying[invoice_id] = payment_id
    records = list(RecoveryRecord.objects.filter(invoice_id__in=invoice_ids, attempt_number__gt=0)
                   .values_list("invoice_id", "attempt_number", "method", "outcome", "payment_id"))
    attempted_at_k, tried_with = defaultdict(set), Counter()
    credited = {}
    paying_ids = set(paying.values())
    for invoice_id, k, method, outcome, payment_id in records:
        attempted_at_k[k].add(invoice_id)
        if outcome != "skipped":
            tried_with[method] += 1
        if payment_id is not None and payment_id in paying_ids and paying.get(invoice_id) == payment_id:
            credited[invoice_id] = (k, method)

    recovered_at_k = Counter(k for k, _ in credited.values())
    recovered_with = Counter(method for _, method in credited.values())
    currency = organization.default_currency
    durations = [(paid[i] - first_failures[i].attempted_at).total_seconds() for i in paid if paid[i] is not None]
    median = statistics.median(durations) if durations else None
    return {
        "object": "recovery_analytics",
        "from": start,
        "to": end,
        "currency": currency,
        "failed_payments": len(first_failures),
        "failed_amount": sum(r.amount for r in first_failures.values() if r.currency == currency),
        "recovered_count": len(paid),
        "recovered_amount": sum(first_failures[i].amount for i in paid if first_failures[i].currency == currency),
        "recovery_rate": _rate(len(paid), len(first_failures)),
        "recovered_outside_retries": len(paid) - len(credited),
        "by_attempt": [{"attempt_number": k, "attempts": len(attempted_at_k[k]), "recovered": recovered_at_k[k],
                        "recovery_rate": _rate(recovered_at_k[k], len(attempted_at_k[k]))}
                       for k in sorted(attempted_at_k)],
        "by_method": [{"method": method, "attempts": tried_with[method], "recovered": recovered_with[method],
                       "recovery_rate": _rate(recovered_with[method], tried_with[method])}
                      for method in ("card", "bank_slip", "pix") if tried_with[method] or recovered_with[method]],
        "median_time_to_recover_seconds": round(median) if median is not None else None,
    }
