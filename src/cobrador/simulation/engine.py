"""Walking simulated time: every registered job at its cron times, the customers' actions in between,
and after each step the work that real workers do at once (queued tasks, webhook and notice delivery).

Time only moves through `cobrador.core.clock`. The walk is one ordered queue of moments: each job's
firings within [start, start + days) and the customers' scheduled actions (an action and a job at the
same moment: the action first). Jobs that fire more often than `resolution` (the every-minute safety
nets, the 15-minute callback retry) run at most once per resolution step, as a worker that was busy
for that long would run them: the sweeps are level-triggered, so this changes only how soon a safety
net would have acted, never what is done. After every job run and every action the simulation
settles: it runs the django-ox tasks that are due (in this thread, as a worker would) and drains the
outbox (webhook deliveries to the demo endpoint, notices to .eml files) until nothing is left.

Customers act through the real API (an API key of the demo organization and Django's test client, so
requests pass the same middleware, auth and validation as over HTTP). Boletos and PIX are paid at the
sandbox and their signed callbacks are posted to the real callback view. Customers react to what
happens to them (a declined card, a boleto issued, a suspension, a renewal prompt, a card-expiry
alert) after delays drawn from their own random stream, so a seed gives the same story every time.
"""

import heapq
import itertools
import json
import logging
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connections, transaction
from django.db.models import Q
from django.test import Client
from django.utils import timezone
from django_ox.cron import CronExpression
from django_ox.models import OxTask
from django_ox.worker import worker_class

from cobrador.core import clock
from cobrador.core.money import format_money
from cobrador.core.outbox import drain_until_idle
from cobrador.customers.models import PaymentMethod
from cobrador.events.models import Event
from cobrador.gateways.sandbox import build_sandbox_payment_callback
from cobrador.invoicing.models import Invoice
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.runner import run_job
from cobrador.notifications.models import Notice
from cobrador.organizations.models import Organization
from cobrador.organizations.services import create_api_key, create_organization
from cobrador.payments.models import Payment
from cobrador.simulation import nfeio as nfeio_sandbox
from cobrador.simulation.receiver import WebhookReceiver
from cobrador.simulation.report import count_mails
from cobrador.simulation.scenario import (
    CARD_TOKENS,
    COUPONS,
    DUNNING_POLICY,
    ONE_OFF_FEES,
    PLANS,
    Customer,
    build_customers,
)
from cobrador.simulation.timeline import Timeline
from cobrador.webhooks.models import WebhookDelivery

logger = logging.getLogger(__name__)

DOCUMENT_METHODS = ("bank_slip", "pix")
CARD_BRANDS = ["visa", "mastercard", "elo", "amex", "hipercard"]
ORGANIZATION_NAME = "Demo SaaS (simulation)"
MAX_TASKS_PER_DRAIN = 1000


class SimulationRefused(Exception):
    """The database is not one a simulation may use (it already holds organizations)."""


# --- the schedule --------------------------------------------------------------------------------------


def _naive(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC)


def _ceil(moment: datetime, step: timedelta) -> datetime:
    seconds = step.total_seconds()
    epoch = moment.timestamp()
    return datetime.fromtimestamp(-(-epoch // seconds) * seconds, UTC)


def job_firings(start: datetime, end: datetime, resolution: timedelta) -> list[tuple[datetime, str]]:
    """(moment, job name) for every run of every registered job in [start, end), in time order (jobs
    due at the same moment in catalog order). Jobs firing more often than `resolution` are coalesced
    to the next multiple of `resolution`."""
    firings = []
    for name, spec in JOBS.items():
        cron_text = spec.effective_cron
        if not cron_text:
            continue
        cron = CronExpression(cron_text)
        first = _aware(cron.following(_naive(start - timedelta(minutes=1))))
        second = _aware(cron.following(_naive(first)))
        coalesce = second - first < resolution
        moment = first
        while moment < end:
            if coalesce:
                moment = _ceil(moment, resolution)
                if moment >= end:
                    break
            firings.append((moment, name))
            moment = _aware(cron.following(_naive(moment)))
    order = {name: i for i, name in enumerate(JOBS)}
    firings.sort(key=lambda f: (f[0], order[f[1]]))
    return firings


# --- the API as the demo organization's code and customers use it ---------------------------------------


class ApiError(Exception):
    def __init__(self, status: int, body: dict):
        self.status, self.body = status, body
        error = body.get("error", body) if isinstance(body, dict) else body
        message = error.get("message") if isinstance(error, dict) else None
        super().__init__(f"{status}: {message or json.dumps(body)[:200]}")


class Api:
    def __init__(self, key: str):
        self.client = Client()
        self.headers = {"Authorization": f"Bearer {key}"}

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        response = self.client.generic(method, f"/v1{path}", data=json.dumps(body) if body is not None else "",
                                       content_type="application/json", headers=self.headers)
        data = response.json() if response.content else {}
        if response.status_code >= 400:
            raise ApiError(response.status_code, data)
        return data

    def post(self, path: str, body: dict | None = None) -> dict:
        return self.call("POST", path, body if body is not None else {})

    def patch(self, path: str, body: dict) -> dict:
        return self.call("PATCH", path, body)


# --- the simulation ------------------------------------------------------------------------------------


@dataclass(order=True)
class _Moment:
    at: datetime
    priority: int  # 0: a customer's action, 1: a job
    seq: int
    kind: str = field(compare=False)
    payload: object = field(compare=False)


@dataclass
class Options:
    # The defaults of `cobrador simulate`: long enough for a whole dunning case (decline, five retries over
    # 18 days, suspension 20 days after the decline, payment, reactivation) and a monthly renewal for everyone, in well
    # under a minute on two cores.
    days: int = 45
    accounts: int = 100
    seed: int = 1
    start: datetime = datetime(2026, 2, 2, tzinfo=UTC)
    resolution: timedelta = timedelta(hours=6)
    follow: int = 4  # featured accounts whose every step the timeline shows

    @property
    def end(self) -> datetime:
        return self.start + timedelta(days=self.days)


class Simulation:
    def __init__(self, options: Options, progress=None):
        self.options = options
        self.progress = progress  # told each moment reached (progress.SimulationProgress), or None
        self.start, self.end = options.start, options.end
        self.timeline = Timeline(options.start)
        self.queue: list[_Moment] = []
        self._seq = itertools.count()
        self.customers: list[Customer] = []
        self.by_account: dict[str, Customer] = {}  # ba_ id -> customer
        self.subscriptions: dict[int, str] = {}  # customer index -> sub_ id
        self.job_runs: list = []
        self.actions: Counter = Counter()
        self.callback_answers: Counter = Counter()  # status code -> callbacks answered with it
        self.errors: list[str] = []
        self.plan_ids: dict[str, str] = {}
        self._last_event = 0
        self._last_notice = 0
        self._reacted: set[tuple] = set()
        self._idle = False
        self.proposals: dict[int, str] = {}  # proposal index -> prop_ id

    # --- set-up --------------------------------------------------------------------------------------

    def _schedule(self, at: datetime, kind: str, payload=None, priority: int = 0) -> None:
        heapq.heappush(self.queue, _Moment(at, priority, next(self._seq), kind, payload))

    def _check_database(self) -> None:
        if Organization.objects.exists():
            raise SimulationRefused(
                "the database already holds organizations. A simulation moves the clock through every sweep, "
                "which work on every organization in the database: give it a database of its own (the default) "
                "or an empty one with --database")

    def _set_up_organization(self) -> None:
        with transaction.atomic():
            self.organization = create_organization(name=ORGANIZATION_NAME, mode="test",
                                                    billing_email="financeiro@demo-saas.example")
            _, key = create_api_key(organization=self.organization, name="simulation")
        self.api = Api(key)
        endpoint = self.api.post("/webhook_endpoints", {"url": self.receiver.url, "enabled_events": ["*"],
                                                        "description": "the simulation's receiver"})
        self.receiver.secret = endpoint["secret"]
        for key_name, plan in PLANS.items():
            self.plan_ids[key_name] = self.api.post("/plans", plan)["id"]
        self.plan_names = {self.plan_ids[k]: p["name"] for k, p in PLANS.items()}
        for coupon in COUPONS:
            self.api.post("/coupons", coupon)
        self.dunning_policy = self.api.patch("/organizations/settings/dunning", DUNNING_POLICY)
        # NFS-e for every paid invoice, through the simulation's own NFe.io on loopback.
        self.fiscal_policy = self.api.patch("/organizations/settings/fiscal", {
            "policy": "on_payment", "nfeio_company_id": nfeio_sandbox.COMPANY_ID,
            "nfeio_api_key": nfeio_sandbox.API_KEY, "city_service_code": "0107", "federal_service_code": "1.05"})
        self.timeline.plan_names = self.plan_names

    # --- the walk --------------------------------------------------------------------------------------

    @contextmanager
    def _this_process_for_the_simulation(self):
        """What this process changes while the simulation runs, and puts back after."""
        previous_clock = clock.now() if clock.is_frozen() else None
        allow_private, allowed_hosts = settings.WEBHOOK_ALLOW_PRIVATE, settings.ALLOWED_HOSTS
        # The demo endpoint listens on loopback; the API is called through Django's test client.
        settings.WEBHOOK_ALLOW_PRIVATE = True
        if "testserver" not in allowed_hosts and "*" not in allowed_hosts:
            settings.ALLOWED_HOSTS = [*allowed_hosts, "testserver"]
        # Refusals the customers meet are told by the timeline; the request log would repeat them.
        request_logger = logging.getLogger("django.request")
        request_log_level = request_logger.level
        request_logger.setLevel(logging.ERROR)
        # The customers' API requests end like web requests, which closes the database connection once it
        # is older than CONN_MAX_AGE: keep it for the whole simulation.
        connection_settings = connections["default"].settings_dict
        conn_max_age = connection_settings.get("CONN_MAX_AGE", 0)
        connection_settings["CONN_MAX_AGE"] = None
        self.receiver = WebhookReceiver().start()
        self.nfeio = nfeio_sandbox.NfeioSandbox().start()
        nfeio_base_url, settings.NFEIO_BASE_URL = settings.NFEIO_BASE_URL, self.nfeio.url
        # The simulation's own NFe.io listens on loopback, which the outbound guard refuses otherwise.
        provider_allow_private, settings.PROVIDER_ALLOW_PRIVATE = settings.PROVIDER_ALLOW_PRIVATE, True
        try:
            yield
        finally:
            settings.NFEIO_BASE_URL = nfeio_base_url
            settings.PROVIDER_ALLOW_PRIVATE = provider_allow_private
            self.nfeio.stop()
            self.receiver.stop()
            clock.set(previous_clock)
            connection_settings["CONN_MAX_AGE"] = conn_max_age
            request_logger.setLevel(request_log_level)
            settings.WEBHOOK_ALLOW_PRIVATE, settings.ALLOWED_HOSTS = allow_private, allowed_hosts

    def run(self) -> "Simulation":
        started = time.monotonic()
        self._check_database()
        self.mails_before = count_mails(Path(settings.MAIL_DIR))
        self.worker = worker_class()(queues=None)
        with self._this_process_for_the_simulation():
            clock.set(self.start)
            self._set_up_organization()
            self.customers = build_customers(accounts=self.options.accounts, days=self.options.days,
                                              seed=self.options.seed, start=self.start)
            stories = sorted(c.index for c in self.customers if c.story)
            self.featured = set(stories[:self.options.follow])
            for customer in self.customers:
                self._schedule(self.start + customer.joins_at, "join", customer)
            self._schedule_proposals()
            for at, name in job_firings(self.start, self.end, self.options.resolution):
                self._schedule(at, "job", name, priority=1)
            self._drain()
            while self.queue and self.queue[0].at < self.end:
                moment = heapq.heappop(self.queue)
                clock.set(moment.at)
                if moment.kind == "job":
                    self._run_job(moment.payload, moment.at)
                elif moment.kind.startswith("proposal_"):
                    self._proposal_step(moment)
                    self._drain()
                else:
                    self._act(moment)
                    # Customers acting at the same instant (an import) do not wait for each other's effects.
                    if not (self.queue and self.queue[0].at == moment.at and self.queue[0].kind != "job"):
                        self._drain()
                if self.progress is not None:
                    self.progress.reached(moment.at)
            clock.set(self.end)
            self._drain()
            if self.progress is not None:
                self.progress.reached(self.end)
        self.elapsed = time.monotonic() - started
        return self

    @staticmethod
    def _due_tasks():
        """Tasks a worker would claim now. django-ox schedules by real time (timezone.now), not by the
        simulated clock: a task enqueued to run later runs once that much real time has passed."""
        return OxTask.objects.filter(Q(run_after__isnull=True) | Q(run_after__lte=timezone.now()), status="READY")

    def _tasks_ready(self) -> bool:
        return self._due_tasks().exists()  # a read: cheaper than a claim that finds nothing

    def _run_due_tasks(self) -> int:
        """The django-ox tasks that are due, each claimed and run in this thread as a worker runs it."""
        ran = 0
        while ran < MAX_TASKS_PER_DRAIN and self._tasks_ready() and self.worker.run_once():
            ran += 1
        return ran

    def _drain(self) -> None:
        """What real workers do right away: due tasks, then the outbox, until nothing is left."""
        for _ in range(100):
            self._run_due_tasks()
            drain_until_idle()
            if not self._tasks_ready():  # delivering can enqueue tasks too
                break
        self._observe()
        self._idle = not self._work_waiting()

    def _work_waiting(self) -> bool:
        """Whether anything may become due later without a new write: tasks, webhook deliveries or
        notices waiting (for a retry, or for their time)."""
        return (WebhookDelivery.objects.filter(status="pending").exists()
                or Notice.objects.filter(status="pending").exists() or self._tasks_ready())

    def _run_job(self, name: str, at: datetime) -> None:
        run = run_job(name, as_of=at, trigger="simulate")
        self.job_runs.append(run)
        did_nothing = (run.status == "succeeded" and not (run.items_done or run.items_failed or run.items_skipped)
                       and not any(run.counts.values()))
        # A sweep that found nothing to do wrote nothing: when nothing else is waiting, there is nothing to run.
        if not (did_nothing and self._idle):
            self._drain()

    # --- watching what happened -------------------------------------------------------------------------

    def _observe(self) -> None:
        events = list(Event.objects.filter(organization=self.organization, pk__gt=self._last_event).order_by("pk")
                      .values("pk", "type", "data", "created_at"))
        if events:
            self._last_event = events[-1]["pk"]
        for event in events:
            account = self.timeline.account_of(event["type"], event["data"])
            customer = self.by_account.get(account)
            self.timeline.event(event["created_at"], event["type"], event["data"], customer,
                                featured=customer is not None and customer.index in self.featured)
            if customer is not None:
                self._react(customer, event["type"], event["data"], event["created_at"])
        notices = list(Notice.objects.filter(organization=self.organization, pk__gt=self._last_notice)
                       .order_by("pk").values("pk", "type", "channel", "created_at", "account__public_id"))
        if notices:
            self._last_notice = notices[-1]["pk"]
        for notice in notices:
            customer = self.by_account.get(notice["account__public_id"])
            self.timeline.notice(notice["created_at"], notice["type"], notice["channel"], customer,
                                 featured=customer is not None and customer.index in self.featured)
            if customer is not None and notice["type"] == "card_expiring" and notice["channel"] == "email":
                if customer.replaces_expiring_card_after is not None:
                    self._once(customer, "replace_card", notice["created_at"] + _days(
                        customer.replaces_expiring_card_after), "add_card")

    def _customer_acts(self, customer: Customer, at: datetime, kind: str, payload: dict | None = None) -> None:
        """Schedule a customer's action at a human time: a few minutes after `at`, and in the daytime
        (08:00-21:00 in Brasília, UTC-3)."""
        at = at.replace(second=0, microsecond=0) + timedelta(minutes=customer.rng.randint(3, 59))
        local_hour = (at.hour - 3) % 24
        if not 8 <= local_hour < 21:
            days_ahead = 1 if local_hour >= 21 else 0
            at = (at - timedelta(hours=3)).replace(hour=8, minute=0) + timedelta(
                days=days_ahead, hours=3, minutes=customer.rng.randint(0, 180))
        self._schedule(max(at, clock.now() + timedelta(minutes=1)), kind, {"customer": customer, **(payload or {})})

    def _once(self, customer: Customer, reason: str, at: datetime, kind: str, payload: dict | None = None) -> None:
        key = (customer.index, reason)
        if key not in self._reacted:
            self._reacted.add(key)
            self._customer_acts(customer, at, kind, payload)

    def _react(self, customer: Customer, type_: str, data: dict, at: datetime) -> None:
        if type_ == "payment.pending" and data.get("method") in DOCUMENT_METHODS and customer.pays_documents_after:
            low, high = customer.pays_documents_after
            self._customer_acts(customer, at + _days(customer.rng.uniform(low, high)), "pay_document",
                                {"invoice": data["invoice"]})
        elif type_ == "payment.failed" and data.get("method") == "card" and customer.new_card_after_decline:
            self._once(customer, "new_card", at + _days(customer.new_card_after_decline), "add_card")
        elif type_ == "billing_account.suspended" and customer.pays_after_suspension is not None:
            self._customer_acts(customer, at + _days(customer.pays_after_suspension), "pay_what_is_owed")
        elif type_ == "subscription.renewal_prompted" and customer.confirms_renewal_after is not None:
            self._customer_acts(customer, at + _days(customer.confirms_renewal_after), "confirm_renewal",
                                {"subscription": data["id"]})

    # --- proposals: the sales side ------------------------------------------------------------------------

    def _schedule_proposals(self) -> None:
        """A tenth as many prospects as accounts (at least 3) get a proposal valid for 7 days, sent over the
        first 60% of the run: a third open the page and accept it the next day, a third open it and let it
        expire, a third never open it (expired by proposal-expiration)."""
        count = max(3, self.options.accounts // 10)
        for index in range(count):
            sent_at = self.start + timedelta(days=1) + (self.end - self.start) * 0.6 * index / count
            self._schedule(sent_at, "proposal_send", {"index": index})
            if index % 3 != 2:
                self._schedule(sent_at + timedelta(hours=5), "proposal_view", {"index": index})
            if index % 3 == 0:
                self._schedule(sent_at + timedelta(days=1, hours=2), "proposal_accept", {"index": index})

    def _proposal_step(self, moment: _Moment) -> None:
        index = moment.payload["index"]
        try:
            if moment.kind == "proposal_send":
                local_day = moment.at.astimezone(ZoneInfo(self.organization.timezone)).date()
                proposal = self.api.post("/proposals", {
                    "prospect": {"name": f"Prospect {index + 1}", "email": f"prospect{index + 1}@example.com"},
                    "lines": [{"plan": next(iter(self.plan_ids.values())), "quantity": 1 + index % 3}],
                    "expires_on": (local_day + timedelta(days=7)).isoformat()})
                self.proposals[index] = proposal["id"]
                self.api.post(f"/proposals/{proposal['id']}/send")
            elif moment.kind == "proposal_view":
                # The prospect opens the link of the e-mail, as a browser would.
                link = Notice.objects.filter(type="proposal_sent", context__proposal__id=self.proposals[index]) \
                    .values_list("link", flat=True).first()
                if link:
                    Client().get(urlsplit(link).path)
            else:
                self.api.post(f"/proposals/{self.proposals[index]}/accept")
            self.actions[moment.kind] += 1
        except ApiError:
            self.actions[f"{moment.kind}_refused"] += 1
        except Exception as exc:  # a bug: shown in the summary, the walk goes on
            logger.exception("simulation: %s of proposal %d failed", moment.kind, index)
            self.errors.append(f"{moment.at:%Y-%m-%d %H:%M} proposal {index + 1}: {moment.kind} FAILED: "
                               f"{type(exc).__name__}: {exc}")

    # --- customers' actions ------------------------------------------------------------------------------

    def _act(self, moment: _Moment) -> None:
        payload = moment.payload
        customer = payload if isinstance(payload, Customer) else payload["customer"]
        action = getattr(self, f"_{moment.kind}")
        seq = self.timeline.reserve()  # the action's line comes before the lines of what it caused
        try:
            text = action(customer, **({} if isinstance(payload, Customer) else
                                       {k: v for k, v in payload.items() if k != "customer"}))
            self.actions[moment.kind] += 1
        except ApiError as exc:
            text = f"{moment.kind.replace('_', ' ')} refused by the API ({exc})"
            self.actions[f"{moment.kind}_refused"] += 1
        except Exception as exc:  # a bug in a worker or in the simulation: shown in the summary, the walk goes on
            logger.exception("simulation: %s of %s failed", moment.kind, customer.name)
            text = f"{moment.kind.replace('_', ' ')} FAILED: {type(exc).__name__}: {exc}"
            self.errors.append(f"{moment.at:%Y-%m-%d %H:%M} {customer.name}: {text}")
        if text:
            self.timeline.action(moment.at, moment.kind, text, customer, seq=seq,
                                 featured=customer.index in self.featured)

    def _card_body(self, customer: Customer, token: str, expires: tuple[int, int] | None = None) -> dict:
        rng = customer.rng
        month, year = expires or (rng.randint(1, 12), self.start.year + rng.randint(1, 4))
        return {"type": "card", "brand": rng.choice(CARD_BRANDS), "last4": f"{rng.randrange(10000):04d}",
                "exp_month": month, "exp_year": year, "gateway_token": token}

    def _join(self, customer: Customer) -> str:
        account = self.api.post("/billing_accounts", {
            "name": customer.name, "email": customer.email, "document": customer.document,
            "address": customer.address, "locale": customer.locale,
            "metadata": {"simulation": customer.story or "crowd"}})
        self.by_account[account["id"]] = customer
        customer.account_id = account["id"]
        if customer.pays_with == "card":
            self.api.post(f"/billing_accounts/{account['id']}/payment_methods",
                          self._card_body(customer, CARD_TOKENS[customer.card], customer.card_expires))
        elif customer.pays_with in DOCUMENT_METHODS:
            self.api.post(f"/billing_accounts/{account['id']}/payment_methods", {"type": customer.pays_with})
        body = {"account": account["id"], "plan": self.plan_ids[customer.plan], "quantity": customer.quantity,
                "commitment_months": customer.commitment_months, "renewal_mode": customer.renewal_mode}
        if not customer.trial:
            body["trial_days"] = 0
        if customer.coupon:
            body["coupon"] = customer.coupon
        if customer.starts_at is not None:
            body["start"] = (self.start + customer.starts_at).isoformat()
        subscription = self.api.post("/subscriptions", body)
        self.subscriptions[customer.index] = subscription["id"]
        if customer.adds_card_before_trial_end is not None and subscription.get("trial_end"):
            trial_end = datetime.fromisoformat(subscription["trial_end"].replace("Z", "+00:00"))
            self._customer_acts(customer, trial_end - _days(customer.adds_card_before_trial_end), "add_card")
        if customer.cancels_at is not None:
            self._customer_acts(customer, self.start + customer.cancels_at, "cancel")
        if customer.upgrades_after is not None:
            self._customer_acts(customer, clock.now() + _days(customer.upgrades_after), "upgrade")
        if customer.one_off_after is not None:
            self._customer_acts(customer, clock.now() + _days(customer.one_off_after), "bill_one_off")
        return ""  # the events tell it

    def _upgrade(self, customer: Customer) -> str:
        """Basic moves to Pro, a team adds seats: at once, the rest of the period invoiced (proration)."""
        subscription_id = self.subscriptions[customer.index]
        change = ({"quantity": customer.quantity + customer.rng.randint(1, 5)} if customer.plan == "team"
                  else {"plan": self.plan_ids["pro"]})
        data = self.api.patch(f"/subscriptions/{subscription_id}", {**change, "proration": "now"})
        what = (f"{data['quantity']} seats" if "quantity" in change else self.plan_names[data["plan"]])
        invoice = data.get("latest_invoice") or {}
        return f"upgrades to {what} now, prorated: {format_money(invoice.get('total', 0))} for the rest of the period"

    def _bill_one_off(self, customer: Customer) -> str:
        description, amount, service_code = customer.rng.choice(ONE_OFF_FEES)
        collect = "send" if customer.one_off_sent else "charge_now"
        invoice = self.api.post("/invoices", {"account": customer.account_id, "collect": collect, "lines": [
            {"description": description, "unit_amount": amount, "service_code": service_code}]})
        how = "sent to pay" if collect == "send" else "charged now"
        return f"is billed once: {description}, {format_money(invoice['total'])} ({how})"

    def _add_card(self, customer: Customer) -> str:
        """A new card becomes the default. The sandbox has one token per outcome, so a customer whose
        working card is replaced detaches the old one first (a real gateway would issue a new token)."""
        texts = []
        token = CARD_TOKENS["ok"]
        for old in PaymentMethod.objects.filter(account__public_id=customer.account_id, type="card", status="active",
                                                gateway_token=token).order_by("pk"):
            self.api.call("DELETE", f"/billing_accounts/{customer.account_id}/payment_methods/{old.public_id}")
            texts.append(f"removes the card ****{old.card_last4}")
        body = self._card_body(customer, token)
        body["set_default"] = True
        method = self.api.post(f"/billing_accounts/{customer.account_id}/payment_methods", body)
        texts.append(f"adds a new card ({method['brand']} ****{method['last4']}) as default")
        return "; ".join(texts)

    def _cancel(self, customer: Customer) -> str:
        subscription_id = self.subscriptions[customer.index]
        body = {"immediately": True} if customer.cancels_immediately else {}
        body["reason"] = "simulated customer churn"
        data = self.api.post(f"/subscriptions/{subscription_id}/cancel", body)
        if data["status"] == "canceled":
            return "cancels the subscription now"
        return f"cancels the subscription from {data['cancel_at'][:10]}"

    def _confirm_renewal(self, customer: Customer, subscription: str) -> str:
        self.api.post(f"/subscriptions/{subscription}/confirm_renewal")
        return "confirms the renewal of the term"

    def _pay_document(self, customer: Customer, invoice: str) -> str:
        payment = self._payable_document(invoice)
        if payment is None:
            return ""  # already paid, replaced by a newer document, or expired: nothing to pay any more
        return self._pay_at_sandbox(payment)

    def _pay_at_sandbox(self, payment) -> str:
        url, headers, body = build_sandbox_payment_callback(payment)
        content_type = headers.pop("Content-Type")
        response = Client().post(urlsplit(url).path, data=body, content_type=content_type, headers=headers)
        label = "boleto" if payment.method == "bank_slip" else "PIX"
        self.actions["signed_callbacks_sent"] += 1
        self.callback_answers[response.status_code] += 1
        if response.status_code != 200:
            self.errors.append(f"{clock.now():%Y-%m-%d %H:%M} the sandbox callback for {payment.public_id} was "
                               f"answered {response.status_code}")
        return f"pays the {label} of {payment.public_id} (signed callback answered {response.status_code})"

    def _pay_what_is_owed(self, customer: Customer) -> str:
        """Pay every open invoice of the account: a boleto/PIX still payable is paid; otherwise the
        customer adds PIX as a way to pay (which makes dunning retry at once with it) or, if that issues
        nothing, asks for a PIX through POST /v1/invoices/{id}/pay, and pays it."""
        texts = []
        invoices = list(Invoice.objects.filter(account__public_id=customer.account_id, status="open",
                                               amount_due__gt=0).order_by("pk").values_list("public_id", flat=True))
        for invoice in invoices:
            payment = self._payable_document(invoice)
            if payment is None:
                pix = PaymentMethod.objects.filter(account__public_id=customer.account_id, type="pix",
                                                   status="active").first()
                if pix is None:
                    pix_id = self.api.post(f"/billing_accounts/{customer.account_id}/payment_methods",
                                           {"type": "pix"})["id"]
                    texts.append("adds PIX as a way to pay")
                    self._drain()  # a new method makes dunning retry at once: it may issue the PIX
                    payment = self._payable_document(invoice)
                else:
                    pix_id = pix.public_id
                if payment is None:
                    self.api.post(f"/invoices/{invoice}/pay", {"payment_method": pix_id})
                    texts.append(f"asks for a PIX for {invoice}")
                    payment = self._payable_document(invoice)
            if payment is not None:
                texts.append(self._pay_at_sandbox(payment))
        return "; ".join(texts) if texts else "has nothing left to pay"

    def _payable_document(self, invoice: str):
        return (Payment.objects.filter(invoice__public_id=invoice, organization=self.organization, status="pending",
                                       method__in=DOCUMENT_METHODS, expires_at__gt=clock.now())
                .select_related("gateway").order_by("-pk").first())


def _days(value: float) -> timedelta:
    return timedelta(days=value)
