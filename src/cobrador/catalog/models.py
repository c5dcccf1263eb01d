from django.db import models
from django.db.models import Q

from cobrador.core.ids import public_id_default


class Plan(models.Model):
    """A price: `amount` minor units per unit per `interval_count` × `interval`."""

    INTERVALS = [("month", "month"), ("year", "year")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("plan"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="plans")
    name = models.CharField(max_length=200)
    amount = models.BigIntegerField()  # per unit
    currency = models.CharField(max_length=3, default="BRL")
    interval = models.CharField(max_length=5, choices=INTERVALS, default="month")
    interval_count = models.PositiveSmallIntegerField(default=1)
    trial_days = models.PositiveSmallIntegerField(default=0)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [models.CheckConstraint(condition=Q(amount__gte=0), name="plan_amount_not_negative")]

    def __str__(self):
        return f"{self.name} ({self.public_id})"

    @property
    def months_per_period(self) -> int:
        return self.interval_count * (12 if self.interval == "year" else 1)


class Coupon(models.Model):
    """A discount: percent or fixed amount off; once, for N periods, or forever."""

    DURATIONS = [("once", "once"), ("repeating", "repeating"), ("forever", "forever")]

    public_id = models.CharField(max_length=40, unique=True, default=public_id_default("coupon"))
    organization = models.ForeignKey("organizations.Organization", on_delete=models.CASCADE, related_name="coupons")
    code = models.CharField(max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    percent_off = models.DecimalField(max_digits=5, decimal_places=2, null=True, blank=True)
    amount_off = models.BigIntegerField(null=True, blank=True)
    currency = models.CharField(max_length=3, blank=True, default="")
    duration = models.CharField(max_length=10, choices=DURATIONS, default="once")
    duration_in_periods = models.PositiveSmallIntegerField(null=True, blank=True)  # for "repeating"
    expires_at = models.DateTimeField(null=True, blank=True)  # no new redemptions after this
    max_redemptions = models.PositiveIntegerField(null=True, blank=True)
    times_redeemed = models.PositiveIntegerField(default=0)
    plans = models.ManyToManyField("catalog.Plan", blank=True, related_name="coupons")  # empty: every plan
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["organization", "code"], name="coupon_code_once"),
            models.CheckConstraint(
                condition=(Q(percent_off__isnull=False, amount_off__isnull=True)
                           | Q(percent_off__isnull=True, amount_off__isnull=False)),
                name="coupon_percent_or_amount"),
        ]

    def __str__(self):
        return f"{self.code} ({self.public_id})"
