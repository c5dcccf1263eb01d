"""The payments jobs (registered in jobs/catalog.py)."""

from cobrador.payments import charging, reconciliation

UNRECORDED = ("failed_unrecorded", "unrecorded")


def invoice_charging_sweep(run) -> None:
    """`invoice-charging`: the safety net behind the charge queue that payments/sink.py fills with every
    invoice.created. Charges open invoices never charged (no worker was running, a batch failed)."""
    counts = charging.charge_open_invoices()
    run.tally(counts, failed=UNRECORDED, done={"succeeded", "failed", "pending", "unknown"})
    run.skipped += counts.get("skipped", 0) + counts.get("no_gateway", 0)


def payment_reconciliation_sweep(run) -> None:
    """`payment-reconciliation`: ask providers about unknown, stuck and expired payments (see
    payments/reconciliation.py), cancel documents nobody needs, settle lost refund answers."""
    counts = reconciliation.reconcile_due_payments(as_of=run.as_of)
    run.tally(counts, failed=("error",))
