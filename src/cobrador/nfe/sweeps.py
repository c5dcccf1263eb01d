"""The NFS-e job (registered in jobs/catalog.py)."""

from cobrador.nfe import issuing

FAILED_OUTCOMES = {"issue_failed", "cancel_cancel_failed", "follow_failed", "follow_cancel_failed", "issue_unrecorded",
                   "cancel_unrecorded", "follow_unrecorded"}


def nfe_sync_sweep(run) -> None:
    """`nfe-sync`: release blocked notes whose account was fixed, issue pending notes, send requested
    cancellations, and ask NFe.io about every note whose outcome is still open."""
    run.tally(issuing.sync(as_of=run.as_of), failed=FAILED_OUTCOMES)
