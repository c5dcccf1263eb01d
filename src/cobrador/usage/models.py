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
