"""What happened, in simulated time: per day, how many of each notable thing; and for the featured
accounts, one line per step (domain events, notices, their own actions) so their story can be read."""

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from cobrador.core.money import format_money

try:
    from cobrador.notifications.sink import EVENT_TO_NOTICE
except ImportError:  # notifications not there: every notice gets a line of its own
    EVENT_TO_NOTICE = {}

# The order in which a day's counts are listed.
LABELS = [
    "sign-ups", "trials started", "subscriptions started", "trials converted", "paused", "renewals",
    "renewal prompts", "renewals confirmed", "terms renewed", "cancellations scheduled", "canceled", "expired",
    "invoices", "invoices paid", "card charges ok", "cards declined", "boletos issued", "PIX issued",
    "boletos paid", "PIX paid", "boletos/PIX expired", "overdue", "delinquent", "retries", "dunning exhausted",
    "recovered", "suspended", "reactivated", "past due", "cards added", "callbacks sent", "notices",
]
ACTION_LABELS = {"add_card": "cards added"}
METHOD_NAMES = {"card": "card", "bank_slip": "boleto", "pix": "PIX"}


@dataclass
class Line:
    at: datetime
    seq: int
    customer: int  # the customer's index
    account: str  # the customer's name
    text: str


def _day(value) -> str:
    return str(value)[:10] if value else "?"


def _when(value) -> str:
    return str(value)[5:10] if value else "?"


def _money(data: dict, key: str) -> str:
    return format_money(int(data.get(key) or 0), data.get("currency") or "BRL")


class Timeline:
    def __init__(self, start: datetime):
        self.start = start
        self.plan_names: dict[str, str] = {}
        self.days: dict[int, Counter] = defaultdict(Counter)
        self.totals: Counter = Counter()
        self.event_types: Counter = Counter()
        self.lines: list[Line] = []
        self._seq = 0
        # Per subscription: what the last event said, to tell what an update changed.
        self._subscriptions: dict[str, dict] = {}
        self._notice_lines: dict[tuple, Line] = {}  # (moment, customer, notice type) -> the line telling it
        self._suspended: set[str] = set()
        self.notice_types: dict[str, Counter] = defaultdict(Counter)  # type -> channel -> notices written

    def day_of(self, moment: datetime) -> int:
        return (moment.date() - self.start.date()).days + 1

    def date_of(self, day: int) -> date:
        return date.fromordinal(self.start.date().toordinal() + day - 1)

    @staticmethod
    def account_of(type_: str, data: dict) -> str | None:
        if type_.startswith("billing_account."):
            return data.get("id")
        return data.get("account") or data.get("account_id")

    # --- recording ---------------------------------------------------------------------------------------

    def _count(self, moment: datetime, label: str | None) -> None:
        if label:
            self.days[self.day_of(moment)][label] += 1
            self.totals[label] += 1

    def reserve(self) -> int:
        self._seq += 1
        return self._seq

    def _line(self, moment: datetime, customer, text: str, seq: int | None = None) -> Line:
        line = Line(moment, seq or self.reserve(), customer.index, customer.name, text)
        self.lines.append(line)
        return line

    def event(self, moment: datetime, type_: str, data: dict, customer, *, featured: bool) -> None:
        self.event_types[type_] += 1
        label, text = self._describe(type_, data)
        self._count(moment, label)
        if featured and text:
            line = self._line(moment, customer, text)
            if type_ in EVENT_TO_NOTICE:  # the notice this event sends is told on its line
                self._notice_lines = {k: v for k, v in self._notice_lines.items() if k[0] == moment}
                self._notice_lines[(moment, customer.index, EVENT_TO_NOTICE[type_])] = line

    def notice(self, moment: datetime, type_: str, channel: str, customer, *, featured: bool) -> None:
        self._count(moment, "notices")
        self.notice_types[type_][channel] += 1
        if not featured:
            return
        key = (moment, customer.index, type_)
        line = self._notice_lines.get(key)
        if line is None:  # a notice of its own (a reminder, an alert): one line naming every channel
            self._notice_lines = {k: v for k, v in self._notice_lines.items() if k[0] == moment}
            self._notice_lines[key] = self._line(moment, customer, f"notice {type_} by {channel}")
        elif line.text.startswith("notice ") or "; told by " in line.text:
            line.text += f", {channel}"
        else:
            line.text += f"; told by {channel}"

    def action(self, moment: datetime, kind: str, text: str, customer, *, seq: int, featured: bool) -> None:
        self._count(moment, ACTION_LABELS.get(kind))
        if "signed callback" in text:
            self._count(moment, "callbacks sent")
        if featured:
            self._line(moment, customer, f"CUSTOMER {text}", seq)

    # --- what an event means ------------------------------------------------------------------------------

    def _describe(self, type_: str, data: dict) -> tuple[str | None, str]:
        method = METHOD_NAMES.get(data.get("method"), data.get("method"))
        match type_:
            case "billing_account.created":
                return "sign-ups", f"account {data.get('id')} created"
            case "billing_account.delinquent":
                return "delinquent", "account delinquent"
            case "billing_account.suspended":
                self._suspended.add(data.get("id"))
                return "suspended", "ACCOUNT SUSPENDED (" + (data.get("suspension_reason") or "")[:90] + ")"
            case "billing_account.reactivated":
                if data.get("id") in self._suspended:
                    self._suspended.discard(data.get("id"))
                    return "reactivated", "ACCOUNT REACTIVATED"
                return "recovered", "account recovered: nothing overdue any more"
            case "payment_method.attached":
                if data.get("type") == "card":
                    return None, (f"card {data.get('brand')} ****{data.get('last4')} "
                                  f"(expires {data.get('exp_month'):02d}/{data.get('exp_year')}) attached")
                return None, f"{METHOD_NAMES.get(data.get('type'))} attached as a way to pay"
            case "subscription.created":
                return self._subscription_created(data)
            case "subscription.updated":
                return self._subscription_updated(data)
            case "subscription.renewed":
                self._remember(data)
                return "renewals", f"renewed: period {_when(data.get('current_period_start'))} to " \
                                   f"{_when(data.get('current_period_end'))}"
            case "subscription.renewal_prompted":
                self._remember(data)
                return "renewal prompts", f"asked to confirm the renewal (term ends {_day(data.get('commitment_end'))})"
            case "subscription.paused":
                self._remember(data)
                return "paused", "subscription paused (trial ended without a payment method)"
            case "subscription.resumed":
                self._remember(data)
                return None, "subscription resumed"
            case "subscription.canceled":
                self._remember(data)
                return "canceled", "subscription canceled"
            case "subscription.expired":
                self._remember(data)
                return "expired", "subscription expired (renewal not confirmed)"
            case "invoice.created":
                text = f"invoice #{data.get('number')} {_money(data, 'total')}"
                if data.get("discount"):
                    text += f" (discount {_money(data, 'discount')})"
                if data.get("status") == "paid":
                    text += ", nothing to pay"
                return "invoices", text
            case "invoice.paid":
                return "invoices paid", f"invoice #{data.get('number')} paid"
            case "invoice.overdue":
                return "overdue", f"invoice #{data.get('number')} overdue ({_money(data, 'amount_due')} due)"
            case "payment.succeeded":
                label = {"card": "card charges ok", "boleto": "boletos paid", "PIX": "PIX paid"}.get(method)
                return label, f"{method} payment {data.get('id')} of {_money(data, 'amount')} succeeded"
            case "payment.failed":
                if data.get("method") == "card":
                    return "cards declined", f"card declined ({data.get('failure_code')}, " \
                                             f"{data.get('decline_class')}) for {_money(data, 'amount')}"
                return "boletos/PIX expired", f"{method} {data.get('id')} expired unpaid"
            case "payment.pending":
                if data.get("method") == "card":
                    return None, "card payment pending at the provider"
                label = "boletos issued" if data.get("method") == "bank_slip" else "PIX issued"
                return label, f"{method} {data.get('id')} issued for {_money(data, 'amount')}, " \
                              f"payable until {_when(data.get('expires_at'))}"
            case "payment.refunded":
                return None, f"{method} payment {data.get('id')} refunded"
            case "payment.overpaid":
                return None, f"overpaid by {format_money(int(data.get('overpaid_amount') or 0))}: kept as credit"
            case "dunning.retry_attempted":
                tries = ", ".join(f"{METHOD_NAMES.get(r.get('method'), r.get('method'))} {r.get('outcome')}"
                                  for r in data.get("records", []))
                following = data.get("next_retry_at")
                if data.get("outcome") == "succeeded":
                    ending = "paid"
                elif following:
                    ending = f"next retry {_when(following)}"
                else:
                    ending = "no retries left"
                text = f"retry {data.get('attempt_number')}: {tries}; {ending}"
                return "retries", text
            case "dunning.exhausted":
                return "dunning exhausted", "dunning exhausted: no retries left"
        return None, ""

    def _remember(self, data: dict) -> dict:
        previous = self._subscriptions.get(data.get("id"), {})
        self._subscriptions[data.get("id")] = {
            key: data.get(key) for key in ("status", "cancel_at", "renewal_confirmed_at", "commitment_end")}
        return previous

    def _subscription_created(self, data: dict) -> tuple[str, str]:
        self._remember(data)
        plan = self.plan_names.get(data.get("plan"), data.get("plan"))
        text = f"subscribes to {plan}" + (f" × {data['quantity']}" if data.get("quantity", 1) > 1 else "")
        if data.get("coupon"):
            text += " with a coupon"
        if data.get("commitment_months"):
            text += f", {data['commitment_months']}-month term ({data.get('renewal_mode')} renewal)"
        if data.get("status") == "trialing":
            return "trials started", text + f", trial until {_day(data.get('trial_end'))}"
        if str(data.get("current_period_start")) > str(data.get("created_at")):
            text += f", billed from {_day(data.get('current_period_start'))}"
        return "subscriptions started", text

    def _subscription_updated(self, data: dict) -> tuple[str | None, str]:
        before = self._remember(data)
        status, old_status = data.get("status"), before.get("status")
        if old_status and status != old_status:
            if old_status == "trialing" and status == "active":
                return "trials converted", "trial converted: first paid period starts"
            if status == "past_due":
                return "past due", "subscription past due"
            return None, f"subscription {old_status} -> {status}"
        if data.get("cancel_at") and not before.get("cancel_at"):
            return "cancellations scheduled", f"cancellation scheduled for {_day(data.get('cancel_at'))}"
        if data.get("renewal_confirmed_at") and not before.get("renewal_confirmed_at"):
            return "renewals confirmed", "renewal confirmed"
        if before.get("commitment_end") and data.get("commitment_end") != before.get("commitment_end"):
            return "terms renewed", f"term renewed until {_day(data.get('commitment_end'))}"
        return None, ""
