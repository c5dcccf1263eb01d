from datetime import timedelta

import pytest
from django.db import transaction

from cobrador.core.models import IdempotencyRecord
from cobrador.events.models import Event
from cobrador.events.services import record_event
from cobrador.jobs.models import JobRun
from cobrador.jobs.runner import run_job
from cobrador.webhooks.models import WebhookDelivery
from cobrador.webhooks.services import create_endpoint


@pytest.fixture
def endpoint(api, receiver):
    with transaction.atomic():
        return create_endpoint(organization=api.organization, url=receiver.url, enabled_events=["*"])


def _event(organization):
    with transaction.atomic():
        return record_event(organization=organization, type="dunning_config.updated", data={"n": 1})


def test_retention_prunes_what_is_old_and_keeps_what_is_pending_or_recent(api, endpoint, clock):
    start = clock.now()
    delivered = _event(api.organization)
    WebhookDelivery.objects.filter(event=delivered).update(status="succeeded", finished_at=start, next_attempt_at=None)
    pending = _event(api.organization)  # its delivery stays pending (retrying later): the event must survive
    WebhookDelivery.objects.filter(event=pending).update(next_attempt_at=start + timedelta(days=365))
    IdempotencyRecord.objects.create(organization=api.organization, key="k", request_fingerprint="f",
                                     created_at=start)
    old_run = run_job("webhook-delivery")

    clock.set(start + timedelta(days=31))
    recent = _event(api.organization)
    run = run_job("retention-cleanup")
    assert run.status == "succeeded", run.error
    assert run.counts["webhook_deliveries"] == 1 and run.counts["idempotency_keys"] == 1
    assert not WebhookDelivery.objects.filter(event=delivered).exists()
    assert WebhookDelivery.objects.filter(event=pending, status="pending").exists()
    assert Event.objects.filter(pk__in=[delivered.pk, pending.pk, recent.pk]).count() == 3  # events keep 90 days

    clock.set(start + timedelta(days=91))
    run = run_job("retention-cleanup")
    assert not Event.objects.filter(pk=delivered.pk).exists()
    assert Event.objects.filter(pk=pending.pk).exists()  # still has a pending delivery
    assert Event.objects.filter(pk=recent.pk).exists()
    assert not JobRun.objects.filter(pk=old_run.pk).exists()
    assert JobRun.objects.filter(pk=run.pk).exists()


def test_a_rerun_deletes_nothing_more(api, endpoint, clock):
    _event(api.organization)
    clock.advance(timedelta(days=200))
    run_job("retention-cleanup")
    again = run_job("retention-cleanup")
    assert again.status == "succeeded"
    assert sum(again.counts.values()) == 0
