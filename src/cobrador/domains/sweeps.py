"""The custom domain jobs (registered in jobs/catalog.py)."""

from cobrador.domains import issuing, verification
from cobrador.domains.tasks import issue_certificates

FAILED_DNS = ("failed", "inactive")
FAILED_SSL = ("retry", "renewal_failed_notified", "failed", "claim_lost")


def custom_domain_dns_sweep(run) -> None:
    """`custom-domain-dns`: check due domains' DNS; verified ones go on to the ssl task at once."""
    totals = verification.check_due(as_of=run.as_of)
    run.tally(totals, failed=FAILED_DNS, done=set(totals) - {"queries"})  # queries are counted, not items
    if totals["verified"]:
        issue_certificates.enqueue()


def custom_domain_ssl_sweep(run) -> None:
    """`custom-domain-ssl`: order and renew certificates that are due, and publish them."""
    run.tally(issuing.issue_due(as_of=run.as_of), failed=FAILED_SSL)
