"""The MRR definitions (definition version 1). The README and the OpenAPI description say the same.

* MRR of a subscription: its recurring price (plan amount x quantity) after a *recurring* coupon
  (forever, or repeating while the current period is one of its N periods; a `once` coupon is a
  one-off and never counts), normalized to a month (a yearly plan's price / 12, a 3-month plan's / 3),
  rounded half-up to the centavo once, never negative. Only `active` and `past_due` subscriptions
  count: trials, paused, canceled and expired ones are 0. Taxes, one-off charges and credits applied
  are not part of it (cobrador's plans are pre-tax recurring prices).
* Suspended for non-payment: every subscription of a suspended billing account is 0 from the moment
  of suspension (involuntary churn); reactivation brings it back (a reactivation movement).
* A customer's MRR is the sum over their subscriptions, per currency.
* Movements, per customer: `new` (0 -> >0 for the first time), `expansion` (up), `contraction`
  (down, not to 0), `churn` (>0 -> 0; `involuntary` when the account is suspended, `voluntary`
  otherwise) and `reactivation` (0 -> >0 after a churn). A change that keeps the MRR is no movement.
  Churn of a cancellation at period end happens when the period ends, not when it is scheduled.
* Reconciliation: for every organization and period, MRR at start + new + expansion + reactivation
  - contraction - churn = MRR at end, exactly, in centavos.
"""

from cobrador.catalog.services import coupon_applies_to, coupon_discount
from cobrador.invoicing.services import coupon_in_force

COUNTED_STATUSES = ("active", "past_due")


def normalized(amount: int, months: int) -> int:
    """`amount` per `months` months as a monthly figure, rounded half-up to a whole minor unit."""
    return (2 * amount + months) // (2 * months)


def subscription_mrr(subscription, *, current_invoice_coupon_id=None, current_period_invoiced=False,
                     account_suspended=False) -> int:
    """MRR of one subscription (plan, coupon with plans prefetched, loaded). Whether the current
    period's invoice exists and carried the coupon decides a repeating coupon's last period."""
    if account_suspended or subscription.status not in COUNTED_STATUSES:
        return 0
    plan = subscription.plan
    unit_amount = getattr(subscription, "unit_amount", None)  # an agreed price (a proposal's) wins over the plan's
    subtotal = (plan.amount if unit_amount is None else unit_amount) * subscription.quantity
    coupon = subscription.coupon
    discounted = False
    if coupon is not None and coupon.duration != "once" and coupon_applies_to(coupon, plan):
        if current_period_invoiced:
            discounted = current_invoice_coupon_id == coupon.pk
        else:
            discounted = coupon_in_force(coupon, subscription.coupon_periods_used)
    net = max(subtotal - (coupon_discount(coupon, subtotal) if discounted else 0), 0)
    return normalized(net, plan.months_per_period)


def classify(before: int, after: int, *, ever_paid: bool) -> str | None:
    """The movement kind of a customer's MRR going from `before` to `after`, or None for no movement."""
    if before == after:
        return None
    if before == 0:
        return "reactivation" if ever_paid else "new"
    if after == 0:
        return "churn"
    return "expansion" if after > before else "contraction"


# The same definitions for readers of the API (appended to /v1/openapi.json's description by urls.py;
# the README has them too, and tests/usage/test_definitions.py keeps the two alike).
DEFINITIONS_DOC = """
## Analytics: MRR and its movements (definition version 1)

* **MRR of a subscription**: its recurring price (plan amount x quantity) after *recurring* discounts
  (a `forever` coupon always; a `repeating` coupon while the current period is one of its periods; a
  `once` coupon never: it is a one-off), normalized to a month (a yearly plan's price / 12, a 3-month
  plan's / 3), rounded half-up to the centavo once, never negative. Trials, paused, canceled and
  expired subscriptions are 0; taxes, one-off charges and credits applied are not part of it.
* **Suspended for non-payment counts 0**: every subscription of a suspended billing account is 0 from
  the suspension (involuntary churn) until the account is reactivated (a reactivation). `past_due`
  subscriptions still count until dunning suspends the account.
* **A customer's MRR** is the sum over their subscriptions (per currency).
* **Movements**, per customer, never per subscription: `new` (0 to more than 0, the first time),
  `expansion` (up), `contraction` (down, not to 0), `churn` (more than 0 to 0) and `reactivation`
  (0 to more than 0 after a churn). A change that keeps the MRR (a plan change at the same price) is no
  movement. Churn is `voluntary` (canceled, expired) or `involuntary` (the account suspended by
  dunning), and a cancellation at period end churns when the paid period ends, not when it is scheduled.
* **Reconciliation**: for every organization and every period,
  MRR at start + new + expansion + reactivation - contraction - churn = MRR at end, exactly, in centavos.
"""
