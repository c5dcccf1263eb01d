"""core.bulk: the sweeps' bulk writers write what the ORM would, on SQLite and PostgreSQL."""

from datetime import UTC, datetime

import pytest
from django.db import IntegrityError, connection, transaction

from cobrador.core.bulk import build, insert_objects, insert_rows, update_rows
from cobrador.events.models import Event
from cobrador.notifications.models import Notice
from cobrador.webhooks.models import WebhookEndpoint
from tests.factories import make_org

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def test_insert_objects_returns_ids_in_order_and_round_trips_values(api):
    events = [Event(organization=api.organization, type="invoice.created", created_at=AT,
                    data={"n": i, "text": "ação \"quoted\"\ttab", "nested": {"list": [1, None]}}) for i in range(5)]
    with transaction.atomic():
        insert_objects(events, returning_ids=True)
    assert all(e.pk is not None and not e._state.adding for e in events)
    stored = Event.objects.in_bulk([e.pk for e in events])
    for event in events:
        assert stored[event.pk].public_id == event.public_id
        assert stored[event.pk].data == event.data
        assert stored[event.pk].created_at == AT


def _notice(organization, key: str, recipient: str) -> Notice:
    return Notice(organization=organization, type="invoice_created", channel="email", dedupe_key=key,
                  recipient=recipient, context={"k": key}, next_attempt_at=AT, created_at=AT)


def test_ignore_conflicts_keeps_the_first_row_and_skips_the_rest(api):
    org = api.organization
    with transaction.atomic():
        insert_objects([_notice(org, "a", "first@example.com"), _notice(org, "b", "b@example.com")],
                       ignore_conflicts=True)
        # A second call in the same transaction (PostgreSQL reuses its staging table).
        insert_objects([_notice(org, "a", "second@example.com"), _notice(org, "c", "c@example.com")],
                       ignore_conflicts=True)
    with transaction.atomic():
        insert_objects([_notice(org, "c", "third@example.com")], ignore_conflicts=True)
    rows = dict(Notice.objects.values_list("dedupe_key", "recipient"))
    assert rows == {"a": "first@example.com", "b": "b@example.com", "c": "c@example.com"}


def test_a_failed_insert_leaves_nothing_behind(api):
    org = api.organization
    with pytest.raises(IntegrityError), transaction.atomic():  # Django's, on both databases (COPY included)
        insert_objects([_notice(org, "dup", "x@example.com"), _notice(org, "dup", "y@example.com")])
    assert not Notice.objects.exists()


def test_encrypted_fields_are_encrypted_in_the_table(api):
    endpoint = WebhookEndpoint(organization=api.organization, url="https://hooks.example.com/x", enabled_events=["*"],
                               secret="whsec_plain_secret", created_at=AT, updated_at=AT)
    with transaction.atomic():
        insert_objects([endpoint], returning_ids=True)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT secret FROM {WebhookEndpoint._meta.db_table} WHERE id = %s", [endpoint.pk])
        raw = cursor.fetchone()[0]
    assert "plain" not in raw
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).secret == "whsec_plain_secret"


def test_update_rows_writes_only_the_given_fields(api):
    events = [Event(organization=api.organization, type="invoice.created", created_at=AT, data={"v": i})
              for i in range(3)]
    with transaction.atomic():
        insert_objects(events, returning_ids=True)
    later = datetime(2026, 4, 1, tzinfo=UTC)
    for event in events:
        event.data = {"v": "changed"}
        event.created_at = later
        event.type = "not.written"
    with transaction.atomic():
        update_rows(events, ["data", "created_at"])
    for event in Event.objects.all():
        assert (event.data, event.created_at, event.type) == ({"v": "changed"}, later, "invoice.created")


def test_update_rows_twice_in_one_transaction_with_nulls_and_encrypted_values(api):
    endpoints = [WebhookEndpoint(organization=api.organization, url=f"https://hooks.example.com/{i}",
                                 enabled_events=["*"], secret=f"whsec_{i}", created_at=AT, updated_at=AT)
                 for i in range(3)]
    with transaction.atomic():
        insert_objects(endpoints, returning_ids=True)
    with transaction.atomic():
        for endpoint in endpoints:
            endpoint.secret, endpoint.disabled_at = f"whsec_new_{endpoint.pk}", AT
        update_rows(endpoints[:2], ["secret", "disabled_at"])
        endpoints[0].disabled_at, endpoints[2].secret = None, "whsec_third"
        # The same columns again in this transaction (PostgreSQL reuses its staging table, emptied).
        update_rows([endpoints[0], endpoints[2]], ["secret", "disabled_at"])
    stored = {e.pk: (e.secret, e.disabled_at) for e in WebhookEndpoint.objects.all()}
    assert stored == {endpoints[0].pk: (f"whsec_new_{endpoints[0].pk}", None),
                      endpoints[1].pk: (f"whsec_new_{endpoints[1].pk}", AT),
                      endpoints[2].pk: ("whsec_third", AT)}


@pytest.mark.django_db(transaction=True)
def test_the_bulk_writers_write_outside_a_transaction_too():
    """PostgreSQL's staging tables are emptied at each commit: in autocommit, COPY committing alone
    would leave the UPDATE (or INSERT ... SELECT) nothing to read."""
    org = make_org("Acme", "live").organization
    insert_objects([_notice(org, "a", "a@example.com")], ignore_conflicts=True)
    notice = Notice.objects.get(dedupe_key="a")
    notice.recipient = "changed@example.com"
    update_rows([notice], ["recipient"])
    assert Notice.objects.get(pk=notice.pk).recipient == "changed@example.com"


def test_ids_cannot_be_returned_for_rows_that_may_be_skipped(api):
    with pytest.raises(ValueError, match="cannot return ids"):
        insert_rows(Event, ["type"], [("x",)], returning_ids=True, ignore_conflicts=True)


def test_build_makes_what_the_constructor_makes(api):
    org = api.organization
    built = build(Event, organization=org, type="invoice.created", data={"a": 1}, created_at=AT)
    made = Event(organization=org, type="invoice.created", data={"a": 1}, created_at=AT)
    fields = [f.attname for f in Event._meta.concrete_fields if f.attname != "public_id"]
    assert [getattr(built, f) for f in fields] == [getattr(made, f) for f in fields]
    assert built.public_id.startswith("evt_") and built.public_id != build(Event).public_id  # made per instance
    assert built.organization is org and built._state.adding  # the relation is cached, the row unsaved
    assert build(Event, organization_id=org.pk).organization == org
    with pytest.raises(TypeError, match="no field 'colour'"):
        build(Event, colour="red")
