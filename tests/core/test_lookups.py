"""core.lookups: `__in` with one array parameter on PostgreSQL selects exactly what Django's IN list does."""

from datetime import UTC, datetime

from django.db import connection
from django.test.utils import CaptureQueriesContext

from cobrador.events.models import Event

AT = datetime(2026, 3, 1, 12, 30, tzinfo=UTC)


def _events(organization, types):
    return Event.objects.bulk_create([Event(organization=organization, type=t, data={}, created_at=AT) for t in types])


def _sql_of(queryset) -> tuple[list, str]:
    with CaptureQueriesContext(connection) as queries:
        rows = list(queryset)
    return rows, queries.captured_queries[-1]["sql"]


def test_int_and_str_lists_select_the_same_rows_and_use_one_array_on_postgresql(api):
    events = _events(api.organization, ["a.x", "b.x", "c.x", "d'quote.x"])
    ids = [events[0].pk, events[2].pk, events[0].pk]  # a duplicate too

    rows, sql = _sql_of(Event.objects.filter(pk__in=ids).order_by("pk"))
    assert rows == [events[0], events[2]]
    assert ("= ANY(" in sql) == (connection.vendor == "postgresql")

    rows, sql = _sql_of(Event.objects.filter(type__in=["b.x", "d'quote.x", "missing"]).order_by("pk"))
    assert rows == [events[1], events[3]]
    assert ("= ANY(" in sql) == (connection.vendor == "postgresql")

    # Through a foreign key (RelatedIn), by instances and by ids.
    assert Event.objects.filter(organization__in=[api.organization]).count() == 4
    assert Event.objects.filter(organization_id__in=[api.organization.pk, api.organization.pk + 999]).count() == 4


def test_empty_none_mixed_and_subquery_right_hand_sides(api):
    events = _events(api.organization, ["a.x", "b.x"])
    assert list(Event.objects.filter(pk__in=[])) == []
    assert list(Event.objects.filter(pk__in=[None])) == []
    assert list(Event.objects.filter(pk__in=[None, events[1].pk])) == [events[1]]
    assert list(Event.objects.exclude(pk__in=[events[0].pk])) == [events[1]]

    # A subquery stays a subquery.
    rows, sql = _sql_of(Event.objects.filter(pk__in=Event.objects.filter(type="b.x").values("pk")))
    assert rows == [events[1]] and "= ANY(" not in sql

    # Values of another kind (here datetimes) keep Django's own IN list.
    rows, sql = _sql_of(Event.objects.filter(created_at__in=[AT]).order_by("pk"))
    assert rows == events and "= ANY(" not in sql
