"""The migrated database holds what the models declare (a migration can lose an index its state keeps)."""

from django.apps import apps
from django.db import connection


def test_every_declared_constraint_and_index_exists_in_the_database(db):
    missing = []
    with connection.cursor() as cursor:
        for model in apps.get_models():
            if not model._meta.managed:
                continue
            present = connection.introspection.get_constraints(cursor, model._meta.db_table)
            missing += [(model._meta.label, item.name) for item in [*model._meta.constraints, *model._meta.indexes]
                        if item.name not in present]
    assert missing == []
