"""The simulation's account of itself: a summary read from the database (the demo organization's rows)
and from what the simulation saw, rendered as text or JSON."""

import json
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Count, Sum

from cobrador.callbacks.models import GatewayCallback
from cobrador.core.money import format_money
from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DelinquentAccount, DunningInvoice, RecoveryRecord
from cobrador.invoicing.models import Invoice
from cobrador.nfe.models import ServiceInvoice
from cobrador.notifications.models import Notice
from cobrador.payments.models import Payment
from cobrador.proposals.analytics import proposal_analytics
from cobrador.simulation.scenario import COUPONS, PLANS
from cobrador.simulation.timeline import LABELS
from cobrador.subscriptions.models import Subscription
from cobrador.webhooks.models import WebhookDelivery


def count_mails(directory: Path) -> int:
    return len(list(directory.glob("*.eml"))) if directory.is_dir() else 0


def featured_accounts(simulation) -> list[dict]:
    """Where each featured account stands at the end, with the records and webhooks that match its story."""
    method_names = {"card": "card", "bank_slip": "boleto", "pix": "PIX"}
    result = []
    for customer in simulation.customers:
        if customer.index not in simulation.featured or not customer.account_id:
            continue
        account = BillingAccount.objects.get(public_id=customer.account_id)
        invoices = Counter(Invoice.objects.filter(account=account).values_list("status", flat=True))
        due = Invoice.objects.filter(account=account, status="open").aggregate(due=Sum("amount_due"))["due"] or 0
        records: dict[int, Counter] = defaultdict(Counter)
        for number, method, outcome in RecoveryRecord.objects.filter(account=account).order_by(
                "invoice__number", "attempt_number", "pk").values_list("invoice__number", "method", "outcome"):
            records[number][f"{method_names.get(method, method)} {outcome}"] += 1
        result.append({
            "account": customer.account_id, "name": customer.name, "story": customer.story, "title": customer.title,
            "status": account.status,
            "subscriptions": sorted(Subscription.objects.filter(account=account).values_list("status", flat=True)),
            "invoices": dict(sorted(invoices.items())), "amount_due": due,
            "delinquency_cases": dict(sorted(Counter(DelinquentAccount.objects.filter(account=account).values_list(
                "status", flat=True)).items())),
            "recovery_records": {f"#{n}": dict(c) for n, c in records.items()},
            "webhooks_received": simulation.receiver.by_account[customer.account_id],
            "notices": Notice.objects.filter(account=account).count(),
        })
    return result


def summarize(simulation) -> dict:
    organization = simulation.organization
    options = simulation.options

    jobs: dict[str, dict] = {}
    for run in simulation.job_runs:
        row = jobs.setdefault(run.job_name, {"runs": 0, "succeeded": 0, "partial": 0, "failed": 0, "items_done": 0,
                                             "items_failed": 0, "items_skipped": 0})
        row["runs"] += 1
        row[run.status] = row.get(run.status, 0) + 1
        row["items_done"] += run.items_done
        row["items_failed"] += run.items_failed
        row["items_skipped"] += run.items_skipped

    def by(queryset, *fields, amount: str | None = None) -> list[dict]:
        annotations = {"count": Count("pk")}
        if amount:
            annotations["amount"] = Sum(amount)
        return list(queryset.values(*fields).annotate(**annotations).order_by(*fields))

    invoices = {row["status"]: {"count": row["count"], "amount": row["amount"] or 0}
                for row in by(Invoice.objects.filter(organization=organization), "status", amount="total")}
    invoice_kinds = {row["kind"]: {"count": row["count"], "amount": row["amount"] or 0}
                     for row in by(Invoice.objects.filter(organization=organization), "kind", amount="total")}
    totals = Invoice.objects.filter(organization=organization).aggregate(
        billed=Sum("total"), discounts=Sum("discount"), collected=Sum("amount_paid"), outstanding=Sum("amount_due"))
    payments: dict[str, dict] = defaultdict(dict)
    for row in by(Payment.objects.filter(organization=organization), "method", "status", amount="amount"):
        payments[row["method"]][row["status"]] = {"count": row["count"], "amount": row["amount"] or 0}

    cases = {row["status"]: row["count"] for row in by(DelinquentAccount.objects.filter(organization=organization),
                                                       "status")}
    events = simulation.timeline.event_types
    dunning = {
        "delinquent": sum(cases.values()),
        "cases": cases,
        "retries": events["dunning.retry_attempted"],
        "exhausted": events["dunning.exhausted"],
        "suspended": events["billing_account.suspended"],
        "reactivated": simulation.timeline.totals["reactivated"],  # after a suspension
        "recovered": cases.get("recovered", 0),  # cases closed because nothing is overdue any more
        "schedules": {row["status"]: row["count"] for row in by(
            DunningInvoice.objects.filter(organization=organization), "status")},
        "recovery_records": {f"{row['method']} {row['outcome']}": row["count"] for row in by(
            RecoveryRecord.objects.filter(organization=organization), "method", "outcome")},
    }
    # Notices and callbacks are counted as they happened: retention-cleanup prunes old rows.
    notices = simulation.timeline.notice_types
    unsent = {row["status"]: row["count"] for row in by(
        Notice.objects.filter(organization=organization).exclude(status="sent"), "status")}
    mail_dir = Path(settings.MAIL_DIR)
    receiver = simulation.receiver
    policy = simulation.dunning_policy
    return {
        "setup": {
            "plans": [f"{p['name']} {_money(p['amount'])}/{p['interval']}"
                      + (f", {p['trial_days']}-day trial" if p["trial_days"] else "") for p in PLANS.values()],
            "coupons": [f"{c['code']} ({c['percent_off']:g}% {c['duration']}"
                        + (f" {c['duration_in_periods']} periods" if c.get("duration_in_periods") else "") + ")"
                        for c in COUPONS],
            "dunning": (f"up to {policy['max_retries']} retries after "
                        f"{', '.join(str(d) for d in policy['retry_interval_days'])} days by "
                        f"{', '.join(policy['retry_payment_methods'])}; suspension "
                        f"{policy['grace_period_days']} days after delinquency once retries are exhausted"),
            "webhook_endpoint": simulation.receiver.url,
        },
        "simulation": {
            "days": options.days, "accounts": options.accounts, "seed": options.seed,
            "start": options.start.isoformat(), "end": options.end.isoformat(),
            "resolution_minutes": int(options.resolution.total_seconds() // 60),
            "organization": organization.public_id,
            "database": f"{settings.DATABASES['default']['ENGINE'].rsplit('.', 1)[-1]} "
                        f"{settings.DATABASES['default']['NAME']}",
            "data_dir": str(settings.DATA_DIR),
        },
        "jobs": dict(sorted(jobs.items())),
        "subscriptions": {row["status"]: row["count"] for row in by(
            Subscription.objects.filter(organization=organization), "status")},
        "invoices": {"by_status": invoices, "by_kind": invoice_kinds, **{k: v or 0 for k, v in totals.items()}},
        "payments": dict(payments),
        "dunning": dunning,
        "callbacks": {"sent": simulation.actions["signed_callbacks_sent"],
                      "answered": {str(code): n for code, n in sorted(simulation.callback_answers.items())},
                      "stored": {f"{row['provider']} {row['status']}": row["count"] for row in by(
                          GatewayCallback.objects.filter(organization=organization), "provider", "status")}},
        "proposals": {key: value for key, value in proposal_analytics(
            organization=organization, start=simulation.start, end=simulation.end + timedelta(days=1)).items()
            if key not in ("object", "from", "to", "by_month")},
        "webhooks": {
            "received": sum(receiver.by_type.values()), "requests": receiver.requests,
            "bad_signatures": receiver.bad_signatures, "duplicates": receiver.duplicates,
            "by_type": dict(sorted(receiver.by_type.items())),
            "still_pending": WebhookDelivery.objects.filter(organization=organization, status="pending").count(),
        },
        "nfse": {"by_status": {row["status"]: row["count"] for row in by(
                     ServiceInvoice.objects.filter(organization=organization), "status")},
                 "at_nfeio": simulation.nfeio.counts()},
        "notices": {"written": {t: dict(sorted(c.items())) for t, c in sorted(notices.items())}, "not_sent": unsent,
                    "mail_dir": str(mail_dir),
                    "mail_files": count_mails(mail_dir) - simulation.mails_before},
        "timeline": {label: simulation.timeline.totals[label] for label in LABELS if simulation.timeline.totals[label]},
        "customer_actions": dict(sorted(simulation.actions.items())),
        "featured_accounts": featured_accounts(simulation),
        "errors": simulation.errors,
        "elapsed_seconds": round(simulation.elapsed, 1),
    }


# --- text ---------------------------------------------------------------------------------------------------


def _money(amount) -> str:
    return format_money(int(amount or 0), "BRL")


def _table(rows: list[tuple], indent: str = "  ") -> list[str]:
    if not rows:
        return [f"{indent}(none)"]
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [str(cell).rjust(widths[i]) if i and isinstance(cell, (int, float)) else str(cell).ljust(widths[i])
                 for i, cell in enumerate(row)]
        lines.append(indent + "  ".join(cells).rstrip())
    return lines


def timeline_lines(simulation, summary: dict) -> list[str]:
    timeline = simulation.timeline
    featured = [c for c in simulation.customers if c.index in simulation.featured]
    lines = []
    setup = summary["setup"]
    lines.append(f"Demo organization {summary['simulation']['organization']} (test mode, sandbox gateway)")
    lines.append("  plans: " + "; ".join(setup["plans"]))
    lines.append("  coupons: " + "; ".join(setup["coupons"]))
    lines.append("  dunning: " + setup["dunning"])
    lines.append(f"  webhooks: every event to {setup['webhook_endpoint']}, a receiver verifying the signatures")
    lines.append("Timeline (UTC). Each day: what happened, counted. Lines with > follow the featured accounts:")
    for customer in featured:
        lines.append(f"  - {customer.name} ({customer.account_id}): {customer.title}")
    by_day = defaultdict(list)
    for line in timeline.lines:
        by_day[timeline.day_of(line.at)].append(line)
    for day in range(1, simulation.options.days + 1):
        counts = timeline.days.get(day, Counter())
        if not counts and not by_day.get(day):
            continue
        summary = ", ".join(f"{counts[label]} {label}" for label in LABELS if counts[label])
        lines.append(f"day {day:>3} {timeline.date_of(day):%a %Y-%m-%d}  {summary}")
        for line in sorted(by_day.get(day, []), key=lambda item: (item.at, item.seq)):
            lines.append(f"      > {line.at:%H:%M} {line.account}: {line.text}")
    return lines


def summary_lines(summary: dict) -> list[str]:
    s = summary["simulation"]
    lines = ["", f"Summary of {s['days']} simulated days, {s['accounts']} accounts (seed {s['seed']}), "
                 f"{s['start'][:10]} to {s['end'][:10]}"]
    lines.append("Jobs (JobRun rows written by the simulation):")
    lines += _table([("job", "runs", "succeeded", "partial", "failed", "items done", "failed", "skipped")] + [
        (name, j["runs"], j["succeeded"], j["partial"], j["failed"], j["items_done"], j["items_failed"],
         j["items_skipped"]) for name, j in summary["jobs"].items()])
    lines.append("Subscriptions by status:  " + ", ".join(f"{k} {v}" for k, v in summary["subscriptions"].items()))
    invoices = summary["invoices"]
    lines.append("Invoices:")
    lines += _table([("status", "count", "total")] + [(status, row["count"], _money(row["amount"]))
                                                      for status, row in invoices["by_status"].items()])
    lines.append("  by kind: " + ", ".join(f"{kind.replace('_', '-')} {row['count']} ({_money(row['amount'])})"
                                           for kind, row in invoices["by_kind"].items()))
    lines.append(f"  billed {_money(invoices['billed'])} (after {_money(invoices['discounts'])} of discounts), "
                 f"collected {_money(invoices['collected'])}, outstanding {_money(invoices['outstanding'])}")
    lines.append("Payments by method and status:")
    lines += _table([("method", "status", "count", "amount")] + [
        (method, status, row["count"], _money(row["amount"]))
        for method, statuses in summary["payments"].items() for status, row in statuses.items()])
    nfse = summary["nfse"]
    lines.append("NFS-e (policy on_payment, the simulation's NFe.io): " + (", ".join(
        f"{n} {status}" for status, n in sorted(nfse["by_status"].items())) or "none") + "; at NFe.io: " + (
        ", ".join(f"{n} {flow}" for flow, n in sorted(nfse["at_nfeio"].items())) or "none"))
    d = summary["dunning"]
    lines.append(f"Dunning: {d['delinquent']} accounts delinquent, {d['recovered']} recovered, {d['suspended']} "
                 f"suspended, {d['reactivated']} reactivated, {d['cases'].get('suspended', 0)} still suspended; "
                 f"{d['retries']} retries, {d['exhausted']} invoices with retries exhausted")
    if d["recovery_records"]:
        lines.append("  recovery records: " + ", ".join(f"{k} {v}" for k, v in d["recovery_records"].items()))
    p = summary["proposals"]
    if p["sent"]:
        accept = p["time_to_acceptance"]
        lines.append(f"Proposals: {p['sent']} sent, {p['viewed']} viewed, {p['accepted']} accepted, {p['declined']} "
                     f"declined, {p['expired']} expired, {p['open']} open; conversion "
                     + (f"{p['conversion_rate']:.0%}" if p["conversion_rate"] is not None else "n/a")
                     + (f", median time to accept {accept['median_seconds'] / 3600:.1f} h"
                        if accept["median_seconds"] is not None else ""))
    c = summary["callbacks"]
    if c["sent"]:
        lines.append(f"Signed sandbox callbacks sent to the callback view: {c['sent']} (answered "
                     + ", ".join(f"{code}: {n}" for code, n in c["answered"].items()) + "); stored now: "
                     + ", ".join(f"{k} {v}" for k, v in c["stored"].items()))
    w = summary["webhooks"]
    lines.append(f"Webhooks received by the demo endpoint: {w['received']} events, signatures verified "
                 f"({w['bad_signatures']} bad, {w['duplicates']} duplicates, {w['still_pending']} still pending); "
                 "by type:")
    lines += _wrap([f"{k} {v}" for k, v in w["by_type"].items()])
    n = summary["notices"]
    lines.append("Notices, by type and channel:")
    lines += _table([("type", "email", "in_app", "webhook")] + [
        (t, c.get("email", 0), c.get("in_app", 0), c.get("webhook", 0)) for t, c in n["written"].items()])
    if n["not_sent"]:
        lines.append("  not sent: " + ", ".join(f"{k} {v}" for k, v in n["not_sent"].items()))
    lines.append(f"  mails kept for reading: {n['mail_files']} .eml files written to {n['mail_dir']}")
    lines.append("Featured accounts at the end (the records and webhooks behind their lines above):")
    for f in summary["featured_accounts"]:
        cases = ", ".join(f"{n} {status}" for status, n in f["delinquency_cases"].items()) or "none"
        lines.append(f"  {f['name']} ({f['account']}): account {f['status']}, subscription "
                     f"{'/'.join(f['subscriptions'])}; invoices " + ", ".join(
                         f"{n} {status}" for status, n in f["invoices"].items())
                     + f" ({_money(f['amount_due'])} due); delinquency cases: {cases}; "
                       f"{f['webhooks_received']} webhooks and {f['notices']} notices about it")
        for invoice, outcomes in f["recovery_records"].items():
            lines.append(f"    recovery records of invoice {invoice}: "
                         + ", ".join(f"{k} ×{n}" for k, n in outcomes.items()))
    if summary["customer_actions"]:
        lines.append("Customer actions: " + ", ".join(f"{k.replace('_', ' ')} {v}"
                                                      for k, v in summary["customer_actions"].items()))
    lines.append(f"Database: {s['database']}")
    lines.append(f"Organization {s['organization']}; data in {s['data_dir']}; took {summary['elapsed_seconds']} s")
    if summary["errors"]:
        lines.append(f"ERRORS ({len(summary['errors'])}):")
        lines += [f"  {e}" for e in summary["errors"][:20]]
    return lines


def _wrap(items: list[str], width: int = 100, indent: str = "  ") -> list[str]:
    lines, current = [], indent
    for item in items:
        if len(current) + len(item) + 2 > width and current.strip():
            lines.append(current.rstrip(", "))
            current = indent
        current += item + ", "
    if current.strip():
        lines.append(current.rstrip(", "))
    return lines


def render_text(simulation, summary: dict, *, quiet: bool = False) -> str:
    lines = [] if quiet else timeline_lines(simulation, summary)
    return "\n".join(lines + summary_lines(summary))


def render_json(simulation, summary: dict) -> str:
    timeline = simulation.timeline
    featured = [{"account": c.account_id, "name": c.name, "story": c.story, "title": c.title,
                 "lines": [{"at": line.at.isoformat(), "text": line.text}
                           for line in sorted(timeline.lines, key=lambda item: (item.at, item.seq))
                           if line.customer == c.index]}
                for c in simulation.customers if c.index in simulation.featured]
    days = [{"day": day, "date": timeline.date_of(day).isoformat(),
             "counts": {label: timeline.days[day][label] for label in LABELS if timeline.days[day][label]}}
            for day in sorted(timeline.days)]
    return json.dumps({**summary, "days": days, "featured": featured}, indent=2, default=str)
