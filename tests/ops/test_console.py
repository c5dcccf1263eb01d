"""The operator's console without a browser: the home page's jobs, backlogs, parked items and last
failures with their links; a billing account's timeline; and its actions, confirmed, through the owning
apps' services, audited in the admin's history."""

from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.test import Client
from django_ox.testing import run_tasks

from cobrador.callbacks.models import GatewayCallback
from cobrador.customers.models import BillingAccount
from cobrador.dunning.models import DunningInvoice, RecoveryRecord
from cobrador.events.models import Event
from cobrador.jobs.catalog import JOBS
from cobrador.jobs.models import FailedItem, JobRun
from cobrador.notifications.models import Notice
from cobrador.payments.models import Payment
from cobrador.webhooks.delivery import deliver_due
from cobrador.webhooks.models import WebhookDelivery
from tests.dunning.conftest import day, failed_first_charge, pay_by_callback, run_jobs_until
from tests.factories import make_org
from tests.webhooks.conftest import register

pytestmark = pytest.mark.django_db


def finished_run(name: str, at, status: str = "succeeded", error: str = "") -> JobRun:
    return JobRun.objects.create(job_name=name, as_of=at, started_at=at - timedelta(seconds=2), finished_at=at,
                                 status=status, error=error, items_failed=1 if status != "succeeded" else 0)


@pytest.fixture
def org(db):
    """A test-mode organization (served by the sandbox) and its API client."""
    return make_org("Cobra", "test")


@pytest.fixture
def account_in_dunning(org, receiver):
    """An account whose first charge failed (day 0) and whose first retry issued a boleto (day 1), with a
    webhook endpoint registered before anything happened."""
    hook = register(org, receiver.url)
    receiver.secrets.append(hook["secret"])
    account, subscription, invoice = failed_first_charge(org.organization)
    return account, subscription, invoice


# --- the home page --------------------------------------------------------------------------------


def test_the_home_page_shows_every_jobs_health_linked_to_its_runs(admin_client, clock):
    now = clock.now()
    for name in JOBS:
        finished_run(name, now)
    JobRun.objects.filter(job_name="webhook-delivery").delete()
    finished_run("webhook-delivery", now - timedelta(hours=1))

    page = admin_client.get("/admin/").content.decode()

    for name in JOBS:
        assert f'href="/admin/jobs/jobrun/?job_name={name}"' in page
    assert 'data-job="webhook-delivery"' in page
    row = page.split('data-job="webhook-delivery"')[1].split("</tr>")[0]
    assert "state-late" in row and "no successful run since" in row
    assert "1 in trouble" in page
    # The apps' lists are still there below.
    assert "Webhook deliveries</a>" in page


def test_the_home_page_counts_backlogs_parked_items_and_last_failures_with_their_lists(admin_client, clock):
    now = clock.now()
    finished_run("payment-retry", now - timedelta(minutes=30), status="failed", error="Traceback\nBoom: gateway down")
    FailedItem.objects.create(job_name="nfe-sync", item_key="nfse_1", attempts=3, last_error="NFe.io said no",
                              first_failed_at=now, last_failed_at=now, parked=True)

    response = admin_client.get("/admin/")

    context = response.context
    backlog = {line.label: line for line in context["backlogs"]}
    assert set(backlog) == {"Invoices queued for charging", "Webhook deliveries", "Notices", "NFS-e",
                            "Gateway callbacks", "Task queue"}
    assert backlog["Invoices queued for charging"].url == "/admin/invoicing/invoice/?status__exact=open"
    assert backlog["Webhook deliveries"].url == "/admin/webhooks/webhookdelivery/?status__exact=pending"
    parked = {line.label: line for line in context["parked"]}
    assert parked["Job items: nfe-sync"].value == 1
    assert parked["Job items: nfe-sync"].url == "/admin/jobs/faileditem/?parked__exact=1&job_name=nfe-sync"
    assert parked["Webhook deliveries failed"].value == 0
    failures = context["last_failures"]
    assert [f["what"] for f in failures] == ["nfe-sync item nfse_1 (parked)", "payment-retry run failed"]
    assert failures[1]["detail"] == "Boom: gateway down"
    page = response.content.decode()
    assert "Boom: gateway down" in page and f'href="{failures[1]["url"]}"' in page
    # Every link of the page opens.
    for line in [*context["backlogs"], *context["parked"]]:
        assert admin_client.get(line.url).status_code == 200, line


def test_the_console_is_for_staff_only(db):
    assert Client().get("/admin/").status_code == 302
    assert Client().get("/admin/accounts/ba_x/").status_code == 302


# --- the timeline -----------------------------------------------------------------------------------


def test_an_accounts_timeline_has_its_whole_history(admin_client, org, account_in_dunning):
    account, subscription, invoice = account_in_dunning
    run_jobs_until(day(1, 7))  # retry 1: the card fails again, a boleto is issued
    boleto = Payment.objects.get(invoice=invoice, method="bank_slip")
    pay_by_callback(boleto)
    run_tasks()

    response = admin_client.get(f"/admin/accounts/{account.public_id}/")

    assert response.status_code == 200
    entries = response.context["entries"]
    kinds = {entry.kind for entry in entries}
    assert kinds == {"account", "subscription", "invoice", "payment", "dunning", "notice", "webhook", "callback"}
    titles = [entry.title for entry in entries]
    assert f"Subscription {subscription.public_id} to Pro" in titles
    assert f"Invoice #{invoice.number} paid" in titles
    assert f"Payment {boleto.public_id} of invoice #{invoice.number}" in titles
    assert f"Retry 1 of invoice #{invoice.number} by bank_slip" in titles
    callback = GatewayCallback.objects.get()
    assert any(e.kind == "callback" and e.target == callback.public_id for e in entries)
    assert {e.target for e in entries if e.kind == "webhook"} == set(
        WebhookDelivery.objects.values_list("public_id", flat=True))
    assert [e.at for e in entries] == sorted((e.at for e in entries), reverse=True)
    page = response.content.decode()
    assert f'href="/admin/payments/payment/{boleto.pk}/change/"' in page
    # The billing account's own page links here.
    change = admin_client.get(f"/admin/customers/billingaccount/{account.pk}/change/").content.decode()
    assert f'href="/admin/accounts/{account.public_id}/"' in change


def test_another_accounts_rows_are_not_in_the_timeline(admin_client, org, account_in_dunning):
    account, _, _ = account_in_dunning
    other, _, _ = failed_first_charge(org.organization, document="111.444.777-35")

    entries = admin_client.get(f"/admin/accounts/{account.public_id}/").context["entries"]
    other_entries = admin_client.get(f"/admin/accounts/{other.public_id}/").context["entries"]

    assert not {e.target for e in entries if e.target} & {e.target for e in other_entries if e.target}


def test_an_unknown_account_is_404(admin_client):
    assert admin_client.get("/admin/accounts/ba_nope/").status_code == 404
    assert admin_client.get("/admin/accounts/ba_nope/suspend/").status_code == 404


# --- the actions ------------------------------------------------------------------------------------


def audit(obj) -> list[str]:
    return list(LogEntry.objects.filter(object_id=str(obj.pk), content_type__model=obj._meta.model_name).order_by("pk")
                .values_list("change_message", flat=True))


def test_suspend_is_confirmed_then_done_by_post_and_audited(admin_client, org, account_in_dunning):
    account, _, _ = account_in_dunning
    url = f"/admin/accounts/{account.public_id}/suspend/"

    confirm = admin_client.get(url)
    assert confirm.status_code == 200 and "Suspend account" in confirm.content.decode()
    assert BillingAccount.objects.get(pk=account.pk).status == "active"  # a GET changes nothing

    refused = admin_client.post(url, {"reason": ""}, follow=True)
    assert "Suspend refused: say why" in refused.content.decode()
    assert BillingAccount.objects.get(pk=account.pk).status == "active"

    done = admin_client.post(url, {"reason": "chargeback fraud"}, follow=True)

    assert done.redirect_chain == [(f"/admin/accounts/{account.public_id}/", 302)]
    assert f"Account {account.public_id} is suspended." in done.content.decode()
    account.refresh_from_db()
    assert account.status == "suspended"
    assert account.suspension_reason == "Suspended by an operator: chargeback fraud"
    assert Event.objects.filter(type="billing_account.suspended").count() == 1
    assert audit(account) == ["Suspended by an operator: chargeback fraud"]
    assert LogEntry.objects.get().user.username == "ops"
    # Suspending again is refused with a message; nothing more is written.
    again = admin_client.post(url, {"reason": "twice"}, follow=True)
    assert "is already suspended" in again.content.decode()
    assert len(audit(account)) == 1

    back = admin_client.post(f"/admin/accounts/{account.public_id}/reactivate/", follow=True)

    assert f"Account {account.public_id} is active again." in back.content.decode()
    account.refresh_from_db()
    assert (account.status, account.suspended_at, account.suspension_reason) == ("active", None, "")
    assert Event.objects.filter(type="billing_account.reactivated").count() == 1
    assert audit(account)[-1] == "Reactivated by an operator"


def test_an_action_needs_the_csrf_token(org, account_in_dunning):
    account, _, _ = account_in_dunning
    client = Client(enforce_csrf_checks=True)
    client.force_login(User.objects.create(username="ops", is_staff=True, is_superuser=True))

    response = client.post(f"/admin/accounts/{account.public_id}/suspend/", {"reason": "x"})

    assert response.status_code == 403
    assert BillingAccount.objects.get(pk=account.pk).status == "active"
    confirm = client.get(f"/admin/accounts/{account.public_id}/suspend/")
    token = confirm.cookies["csrftoken"].value
    response = client.post(f"/admin/accounts/{account.public_id}/suspend/", {"reason": "x",
                                                                           "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert BillingAccount.objects.get(pk=account.pk).status == "suspended"


def test_staff_without_the_permission_cannot_act(org, account_in_dunning):
    account, _, _ = account_in_dunning
    client = Client()
    client.force_login(User.objects.create(username="viewer", is_staff=True))

    assert client.get(f"/admin/accounts/{account.public_id}/").status_code == 403
    assert client.post(f"/admin/accounts/{account.public_id}/suspend/", {"reason": "x"}).status_code == 403
    assert BillingAccount.objects.get(pk=account.pk).status == "active"


def test_retry_now_runs_the_next_dunning_attempt_at_once(admin_client, org, account_in_dunning):
    account, _, invoice = account_in_dunning
    schedule = DunningInvoice.objects.get(invoice=invoice)
    assert schedule.next_attempt_at == day(1, 1, 5)  # retry 1 is due tomorrow
    timeline = admin_client.get(f"/admin/accounts/{account.public_id}/").content.decode()
    assert f'href="/admin/accounts/{account.public_id}/retry_now/?target={invoice.public_id}"' in timeline

    response = admin_client.post(f"/admin/accounts/{account.public_id}/retry_now/", {"target": invoice.public_id},
                                 follow=True)

    assert "payment-retry was started" in response.content.decode()
    run_tasks()  # the worker takes the payment-retry run it enqueued
    assert list(RecoveryRecord.objects.filter(invoice=invoice, attempt_number=1).values_list("method", "outcome")
                .order_by("pk")) == [("card", "failed"), ("bank_slip", "issued")]
    assert audit(schedule) == [f"Retry now (invoice {invoice.public_id}): due at once, payment-retry started"]


def test_retry_now_is_refused_for_an_invoice_of_another_account(admin_client, org, account_in_dunning):
    account, _, _ = account_in_dunning
    _, _, other_invoice = failed_first_charge(org.organization, document="111.444.777-35")

    response = admin_client.post(f"/admin/accounts/{account.public_id}/retry_now/",
                                 {"target": other_invoice.public_id}, follow=True)

    assert "is not in dunning" in response.content.decode()
    assert DunningInvoice.objects.get(invoice=other_invoice).next_attempt_at == day(1, 1, 5)
    assert not LogEntry.objects.exists()


def test_replay_a_webhook_delivery_and_a_callback_and_unpark_a_notice(admin_client, org, account_in_dunning,
                                                                     receiver):
    account, _, invoice = account_in_dunning
    run_jobs_until(day(1, 7))
    pay_by_callback(Payment.objects.get(invoice=invoice, method="bank_slip"))
    run_tasks()
    deliver_due()
    delivery = WebhookDelivery.objects.filter(status="succeeded").order_by("pk").first()
    received = len(receiver.received)
    notice = Notice.objects.filter(account=account).order_by("pk").first()
    Notice.objects.filter(pk=notice.pk).update(status="parked", last_error="SMTP said 550")
    callback = GatewayCallback.objects.get()
    base = f"/admin/accounts/{account.public_id}"

    timeline = admin_client.get(f"{base}/").content.decode()
    assert f"{base}/unpark_notice/?target={notice.public_id}" in timeline
    admin_client.post(f"{base}/replay_webhook/", {"target": delivery.public_id})
    admin_client.post(f"{base}/replay_callback/", {"target": callback.public_id})
    admin_client.post(f"{base}/unpark_notice/", {"target": notice.public_id})

    delivery.refresh_from_db()
    notice.refresh_from_db()
    callback.refresh_from_db()
    assert delivery.status == "pending" and notice.status == "pending" and callback.status == "received"
    run_tasks()
    deliver_due()
    assert [r.webhook_id for r in receiver.wait_for(received + 1)][-1] == delivery.event.public_id
    assert WebhookDelivery.objects.get(pk=delivery.pk).status == "succeeded"
    assert audit(delivery) == [f"Replayed webhook delivery {delivery.public_id} (same webhook-id)"]
    assert audit(callback) == [f"Replayed callback {callback.public_id}: processed again"]
    assert audit(notice) == [f"Unparked notice {notice.public_id}: due now"]
