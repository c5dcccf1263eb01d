"""Hypothesis stateful test: whatever faults the provider injects, whatever crashes happen between the
three steps of a charge, whatever order batch runs, manual charges, reconciliation, callbacks and the
passage of time come in, the Pagar.me fake records at most one charge per payment and at most one paid
charge per invoice, and once everything is reconciled our payments and invoices agree with it.

CI runs COBRADOR_HYPOTHESIS_EXAMPLES sequences (default 200)."""

import json
import os
from datetime import UTC, datetime, timedelta

import pytest
from django.db import transaction
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from cobrador.callbacks import processing, receiving
from cobrador.core import clock
from cobrador.core.errors import Conflict
from cobrador.gateways.pagarme import JWKS_CACHE
from cobrador.invoicing.models import Invoice
from cobrador.payments import charging, reconciliation, services
from cobrador.payments.models import Payment
from tests.factories import make_org
from tests.fakes.pagarme import FakePagarme
from tests.gateways.conftest import make_config, use_fakes
from tests.payments.billing import add_card, make_account, make_invoice

EXAMPLES = int(os.environ.get("COBRADOR_HYPOTHESIS_EXAMPLES", "200"))
FAULTS = ["timeout_after_charge", "500_after_charge", "timeout", "500", "decline", "hard_decline", "validation"]
CLIENT_TIMEOUT = 0.1  # the fake holds a "timeout" for 0.2 s


@pytest.fixture(scope="module")
def pagarme():
    with FakePagarme(fault_delay=0.2) as fake:
        yield fake
    JWKS_CACHE.clear()


@pytest.fixture
def pagarme_host(settings, pagarme):
    use_fakes(settings, pagarme=pagarme)


class Charging(RuleBasedStateMachine):
    fake: FakePagarme

    invoices = Bundle("invoices")

    @initialize()
    def setup(self):
        clock.set(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
        self.fake.faults.clear()
        self.organization = make_org("Stateful", "test").organization
        self.config = make_config(self.organization, "pagarme", ["card"], {"secret_key": self.fake.secret_key},
                                  {"timeout_seconds": CLIENT_TIMEOUT})

    def teardown(self):
        clock.set(None)

    # --- what happens -----------------------------------------------------------------------------

    @rule(target=invoices, amount=st.integers(min_value=100, max_value=100_000))
    def new_invoice(self, amount):
        account = make_account(self.organization)
        add_card(account, "card_fake0001")
        return make_invoice(account, amount=amount)

    @rule(kind=st.sampled_from(FAULTS))
    def provider_fails_next_charge(self, kind):
        self.fake.fail_next(kind)

    @rule()
    def batch_charges_open_invoices(self):
        charging.charge_open_invoices(organization_id=self.organization.pk)

    @rule(invoice=invoices)
    def charge_by_hand(self, invoice):
        try:
            charging.charge_invoice(organization=self.organization, invoice=invoice)
        except Conflict:
            pass  # in flight or already paid

    @rule(invoice=invoices, sent=st.booleans())
    def worker_dies_mid_charge(self, invoice, sent):
        """Step 1 committed; the worker dies before (or right after) calling the provider."""
        try:
            with transaction.atomic():
                payment = services.start_charge(organization=self.organization, invoice=invoice)
        except Conflict:
            return
        if sent:
            charging.send_charge(payment)

    @rule(minutes=st.sampled_from([1, 5, 30, 60, 24 * 60]))
    def time_passes(self, minutes):
        clock.advance(timedelta(minutes=minutes))

    @rule()
    def reconciliation_runs(self):
        reconciliation.reconcile_due_payments(as_of=clock.now())

    @rule(pick=st.integers(min_value=0, max_value=1000))
    def provider_sends_a_callback(self, pick):
        charges = [c for code in Payment.objects.filter(organization=self.organization).order_by("pk")
                   .values_list("public_id", flat=True) for c in self.fake.charges_with_code(code)]
        if not charges:
            return
        charge = charges[pick % len(charges)]
        charge_id = charge["id"]
        event_type = {"paid": "charge.paid", "failed": "charge.payment_failed"}.get(charge["status"], "charge.pending")
        body = json.dumps({"id": f"hook_{charge_id}_{event_type}", "type": event_type, "data": charge}).encode()
        headers = {"x-webhook-asymmetric-signature": self.fake.signature_header(body)}
        receiving.receive_callback(provider="pagarme", token=self.config.callback_token, headers=headers,
                                   body=body)
        processing.process_received()

    # --- what must always hold ----------------------------------------------------------------------

    def _paid_charges(self, invoice) -> int:
        codes = Payment.objects.filter(invoice=invoice).values_list("public_id", flat=True)
        return sum(1 for code in codes for c in self.fake.charges_with_code(code) if c["status"] == "paid")

    @invariant()
    def at_most_one_charge_per_payment_and_one_paid_charge_per_invoice(self):
        if not hasattr(self, "organization"):
            return
        for payment in Payment.objects.filter(organization=self.organization):
            assert self.fake.charges_for(payment.public_id) <= 1, payment.public_id
        for invoice in Invoice.objects.filter(organization=self.organization):
            assert self._paid_charges(invoice) <= 1, invoice.public_id
            assert Payment.objects.filter(invoice=invoice, status__in=services.IN_FLIGHT).count() <= 1

    @invariant()
    def a_paid_invoice_has_one_succeeded_payment(self):
        if not hasattr(self, "organization"):
            return
        for invoice in Invoice.objects.filter(organization=self.organization):
            succeeded = Payment.objects.filter(invoice=invoice, status="succeeded").count()
            assert succeeded <= 1
            assert (invoice.status == "paid") == (succeeded == 1)
            assert invoice.amount_paid + invoice.amount_due == invoice.total

    def settle_everything(self):
        """Let time pass and reconciliation run until no outcome is unknown; then we and the provider agree."""
        self.fake.faults.clear()
        for _ in range(6):
            clock.advance(timedelta(days=1))
            reconciliation.reconcile_due_payments(as_of=clock.now())
        assert not Payment.objects.filter(organization=self.organization, status__in=services.IN_FLIGHT).exists()
        for payment in Payment.objects.filter(organization=self.organization):
            charges = self.fake.charges_with_code(payment.public_id)
            at_provider = charges[0]["status"] if charges else None
            expected = {"paid": "succeeded", "failed": "failed", None: "failed"}[at_provider]
            assert payment.status == expected, (payment.public_id, payment.status, at_provider)
        for invoice in Invoice.objects.filter(organization=self.organization):
            assert (invoice.status == "paid") == (self._paid_charges(invoice) == 1), invoice.public_id


@pytest.mark.django_db
def test_at_most_one_charge_per_invoice_whatever_fails(pagarme, pagarme_host):
    Charging.fake = pagarme

    class CheckedAtTheEnd(Charging):
        def teardown(self):
            try:
                if hasattr(self, "organization"):
                    self.settle_everything()
            finally:
                super().teardown()

    CheckedAtTheEnd.TestCase.settings = settings(
        max_examples=EXAMPLES, stateful_step_count=15, deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
    CheckedAtTheEnd.TestCase().runTest()
