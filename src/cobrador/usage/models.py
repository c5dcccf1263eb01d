"""Usage analytics: the MRR movement ledger and each customer's running MRR balance.

The ledger is written by `usage/sink.py` inside the transaction that changed a customer's MRR, so it
is exact history that outlives event pruning. Definitions (what MRR is, the movement kinds, the
reconciliation identity) are in `usage/mrr.py`.
"""

from django.db import models
from django.db.models import Q

# Bumped whenever the MRR definition in usage/mrr.py changes: rows of different versions never mix.
DEFINITION_VERSION = 1


class CustomerMrr(models.Model):
    """A customer's (billing account's) MRR now, per currency: the balance the next movement starts from."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    currency = models.CharField(max_length=3)
    mrr = models.BigIntegerField(default=0)
    first_paid_at = models.DateTimeField(null=True, blank=True)  # first time MRR went above 0: the cohort
    last_movement_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["account", "currency"], name="customer_mrr_once"),
            models.CheckConstraint(condition=Q(mrr__gte=0), name="customer_mrr_not_negative"),
        ]
        indexes = [models.Index(fields=["organization", "first_paid_at"])]


class MrrMovement(models.Model):
    """One change of one customer's MRR: `mrr_before` -> `mrr_after` (`delta` = after - before)."""

    KINDS = [(k, k) for k in ("new", "expansion", "contraction", "churn", "reactivation")]
    CHURN_TYPES = [("", ""), ("voluntary", "voluntary"), ("involuntary", "involuntary")]

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    account = models.ForeignKey("customers.BillingAccount", on_delete=models.CASCADE, related_name="+",
                                db_index=False)
    currency = models.CharField(max_length=3)
    kind = models.CharField(max_length=12, choices=KINDS)
    churn_type = models.CharField(max_length=11, choices=CHURN_TYPES, blank=True, default="")
    mrr_before = models.BigIntegerField()
    mrr_after = models.BigIntegerField()
    delta = models.BigIntegerField()
    occurred_at = models.DateTimeField()  # when the MRR changed (a canceled period's end, not the cancel)
    cause_event = models.CharField(max_length=40, blank=True, default="")  # evt_ id, for drill-down
    cause = models.CharField(max_length=40, blank=True, default="")  # the sub_ / ba_ that changed
    rebuilt = models.BooleanField(default=False)  # written by `cobrador usage rebuild`, not live
    definition_version = models.PositiveSmallIntegerField(default=DEFINITION_VERSION)
    created_at = models.DateTimeField()

    class Meta:
        indexes = [
            models.Index(fields=["organization", "occurred_at"]),
            models.Index(fields=["account", "occurred_at"]),
        ]
        constraints = [models.CheckConstraint(condition=Q(mrr_before__gte=0, mrr_after__gte=0),
                                              name="mrr_movement_not_negative")]


class UsageDailySnapshot(models.Model):
    """One organization's local day (in its time zone), computed after the day ended by
    `usage-daily-snapshot`. MRR and movements come from the ledger; invoices and payments by the
    day their fact happened (a later refund never rewrites a past day). Amounts in centavos (BRL)."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    day = models.DateField()
    currency = models.CharField(max_length=3, default="BRL")
    definition_version = models.PositiveSmallIntegerField(default=DEFINITION_VERSION)
    mrr = models.BigIntegerField()  # at the end of the day
    arr = models.BigIntegerField()  # 12 x mrr
    mrr_at_start = models.BigIntegerField()
    active_customers = models.PositiveIntegerField()  # customers with MRR > 0 at the end of the day
    movements = models.JSONField(default=dict)  # amounts and counts by kind, churn split by type
    invoices_issued = models.PositiveIntegerField(default=0)
    invoices_issued_amount = models.BigIntegerField(default=0)
    payments_received = models.PositiveIntegerField(default=0)
    payments_received_amount = models.BigIntegerField(default=0)
    payments_by_method = models.JSONField(default=dict)  # {"card": {"count": n, "amount": a}, ...}
    payments_failed = models.PositiveIntegerField(default=0)
    recovered_by_dunning = models.BigIntegerField(default=0)
    # Delinquency cases open (not suspended) and suspended at the end of the day.
    delinquent_accounts = models.PositiveIntegerField(default=0)
    suspended_accounts = models.PositiveIntegerField(default=0)
    proposals_sent = models.PositiveIntegerField(default=0)
    proposals_accepted = models.PositiveIntegerField(default=0)
    nfse_issued = models.PositiveIntegerField(default=0)
    # {status: {plan public id: count}} of the subscriptions as they were when the row was computed: only
    # for a day computed within a day of its end (the job's normal run); a caught-up day has {} (the
    # subscriptions' past statuses are not kept).
    subscriptions = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "day"], name="usage_daily_once")]


class UsageMonthlySnapshot(models.Model):
    """One organization's calendar month (local), consolidated on day 1 of the next by
    `usage-monthly-snapshot` from the ledger; its month-end MRR equals the last daily MRR."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    month = models.DateField()  # the first day of the month
    currency = models.CharField(max_length=3, default="BRL")
    definition_version = models.PositiveSmallIntegerField(default=DEFINITION_VERSION)
    mrr_at_start = models.BigIntegerField()
    mrr = models.BigIntegerField()
    arr = models.BigIntegerField()
    active_customers = models.PositiveIntegerField()
    movements = models.JSONField(default=dict)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "month"], name="usage_monthly_once")]


class UsageCohortRow(models.Model):
    """Customers whose first paid month is `cohort_month`, seen at the end of `month` (`age_months`
    after): how many still pay (logo retention) and their MRR (net revenue retention)."""

    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, db_index=False)
    month = models.DateField()
    cohort_month = models.DateField()
    age_months = models.PositiveSmallIntegerField()
    customers = models.PositiveIntegerField()  # the cohort's size
    active_customers = models.PositiveIntegerField()
    starting_mrr = models.BigIntegerField()  # the cohort's MRR at the end of its first month
    mrr = models.BigIntegerField()
    definition_version = models.PositiveSmallIntegerField(default=DEFINITION_VERSION)
    computed_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["organization", "month", "cohort_month"],
                                               name="usage_cohort_once")]
