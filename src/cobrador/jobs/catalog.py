"""The scheduled jobs: name, default cron (UTC) and the sweep each one runs.

Imported by settings (to declare django-ox schedules), so it must not import Django. Every app adds
its jobs here, in one place. A job's cron can be changed with COBRADOR_CRON_<NAME> (e.g.
COBRADOR_CRON_WEBHOOK_DELIVERY="*/5 * * * *"), or switched off with the value "off".
"""

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class JobSpec:
    name: str
    cron: str
    sweep: str  # dotted path to `sweep(run: JobRunContext)`
    description: str

    @property
    def env_var(self) -> str:
        return "COBRADOR_CRON_" + self.name.upper().replace("-", "_")

    @property
    def effective_cron(self) -> str | None:
        value = os.environ.get(self.env_var, self.cron).strip()
        return None if value == "off" else value


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in [
        JobSpec("webhook-delivery", "* * * * *", "cobrador.webhooks.delivery.webhook_delivery_sweep",
                "Safety net: deliver due webhook attempts (the main path starts right after commit)."),
        JobSpec("subscription-renewal", "0 0 * * *", "cobrador.subscriptions.sweeps.subscription_renewal_sweep",
                "Scheduled cancellations, ended trials, ended terms (auto or prompt renewal), then advance "
                "every elapsed period."),
        JobSpec("invoice-generation", "0 1 * * *", "cobrador.invoicing.sweeps.invoice_generation_sweep",
                "One invoice per (subscription, period_start): lines, coupon, credits; zero totals paid at "
                "once; charging starts as each batch commits."),
        JobSpec("invoice-charging", "5 1 * * *", "cobrador.payments.sweeps.invoice_charging_sweep",
                "Safety net: charge open invoices never charged (the main path is the charge queue: "
                "payments/sink.py queues every invoice.created's invoice and each worker's charge drainer "
                "charges it as soon as the transaction commits)."),
        JobSpec("payment-reconciliation", "0 * * * *", "cobrador.payments.sweeps.payment_reconciliation_sweep",
                "Ask the provider about unknown, stuck or expired payments (5 min, 1 h, then daily); cancel "
                "boleto/PIX documents of paid or void invoices; resend refunds whose answer was lost."),
        JobSpec("callback-retry", "*/15 * * * *", "cobrador.callbacks.sweeps.callback_retry_sweep",
                "Rerun gateway callbacks that failed (with backoff) or got stuck in received/processing."),
        JobSpec("notification-delivery", "* * * * *", "cobrador.notifications.delivery.notification_delivery_sweep",
                "Safety net: send due e-mail, in-app and webhook notices (the main path starts right after commit)."),
        JobSpec("card-expiring", "0 10 * * 1", "cobrador.notifications.sweeps.card_expiring_sweep",
                "Alert accounts whose card expires within card_expiring_days (e-mail and in-app, one per offset)."),
        JobSpec("trial-ending", "0 8 * * *", "cobrador.notifications.sweeps.trial_ending_sweep",
                "Warn before a trial ends (trial_ending_days), above all when no payment method is on file."),
        JobSpec("invoice-reminders", "0 9 * * *", "cobrador.notifications.sweeps.invoice_reminders_sweep",
                "Remind about open invoices due soon (invoice_due_soon_days) and overdue (invoice_overdue_days)."),
        JobSpec("usage-daily-snapshot", "15 0 * * *", "cobrador.usage.sweeps.usage_daily_snapshot_sweep",
                "UsageDailySnapshot per organization and local day from the MRR ledger; missed days caught up."),
        JobSpec("usage-monthly-snapshot", "45 0 1 * *", "cobrador.usage.sweeps.usage_monthly_snapshot_sweep",
                "UsageMonthlySnapshot per organization and local month, with its cohort rows."),
        JobSpec("suspension-check", "0 2 * * *", "cobrador.dunning.sweeps.suspension_check_sweep",
                "Suspend accounts whose dunning retries are exhausted and whose grace period has passed."),
        JobSpec("payment-retry", "0 */6 * * *", "cobrador.dunning.sweeps.payment_retry_sweep",
                "Mark invoices in dunning overdue, then run every due retry (card, boleto, PIX per the policy)."),
        JobSpec("nfe-sync", "*/30 * * * *", "cobrador.nfe.sweeps.nfe_sync_sweep",
                "Issue pending NFS-e (and blocked ones whose account was fixed), send cancellations, and ask "
                "NFe.io about every note it has not settled (the main path starts right after commit)."),
        JobSpec("job-watch", "*/5 * * * *", "cobrador.jobs.health.job_watch_sweep",
                "Nothing silent: a job late or stuck opens an incident and mails COBRADOR_OPS_EMAIL once; "
                "one more e-mail when it recovers."),
        JobSpec("proposal-expiration", "30 0 * * *", "cobrador.proposals.sweeps.proposal_expiration_sweep",
                "Expire sent or viewed proposals whose last valid day has ended in the organization's time zone."),
        JobSpec("proposal-reminder", "0 9 * * *", "cobrador.proposals.sweeps.proposal_reminder_sweep",
                "Remind customers of open proposals on the organization's reminder days (default 3 and 1 "
                "days before the last valid day), once each."),
        JobSpec("custom-domain-dns", "*/10 * * * *", "cobrador.domains.sweeps.custom_domain_dns_sweep",
                "Check pending custom domains' DNS (TXT ownership, CNAME or A/AAAA routing, CAA) with backoff, "
                "failing them after 72 h; re-check active ones daily and deactivate those whose records are gone."),
        JobSpec("custom-domain-ssl", "0 * * * *", "cobrador.domains.sweeps.custom_domain_ssl_sweep",
                "Issue ACME certificates for verified custom domains and renew active ones in their renewal "
                "window (ARI, else a third of the lifetime or 30 days left); publish them to COBRADOR_CERT_DIR."),
        JobSpec("retention-cleanup", "0 3 * * *", "cobrador.jobs.retention.retention_cleanup_sweep",
                "Prune old webhook deliveries, events, JobRuns, idempotency keys and finished task rows."),
    ]
}


def ox_schedules() -> dict:
    return {
        name: {"task": "cobrador.jobs.tasks.run_scheduled_job", "cron": spec.effective_cron,
               "kwargs": {"name": name}}
        for name, spec in JOBS.items()
        if spec.effective_cron
    }
