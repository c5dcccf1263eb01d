"""Operations shared by migrations."""

from django.db import migrations


def drop_pattern_indexes(*tables: str) -> migrations.RunPython:
    """On PostgreSQL, drop the `*_like` indexes of `tables`.

    Django gives every unique or indexed CharField a second PostgreSQL index (varchar_pattern_ops) for
    `LIKE 'prefix%'` lookups. Nothing here looks ids or keys up by prefix (the admin's search is
    `icontains`, which no btree serves), and on the tables that sweeps write in bulk each of them is one
    more index write per row. (An AlterField of such a field would create its index again.)"""

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        with schema_editor.connection.cursor() as cursor:
            cursor.execute("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() "
                           "AND tablename = ANY(%s) AND indexname LIKE '%%\\_like'", [list(tables)])
            names = [name for (name,) in cursor.fetchall()]
        for name in names:
            schema_editor.execute(f"DROP INDEX IF EXISTS {schema_editor.quote_name(name)}")

    return migrations.RunPython(drop, migrations.RunPython.noop, elidable=True)


def restore_constraints(app_label: str, model_name: str, *names: str) -> migrations.RunPython:
    """Create the model's constraints `names` where the database lacks them.

    On PostgreSQL, an AlterField that turns a foreign key's db_index off drops every plain btree index on
    that one column except those in Meta.indexes: a partial unique index from Meta.constraints on the
    same column goes with it, while the migration state still lists it."""

    def restore(apps, schema_editor):
        model = apps.get_model(app_label, model_name)
        with schema_editor.connection.cursor() as cursor:
            present = schema_editor.connection.introspection.get_constraints(cursor, model._meta.db_table)
        for constraint in model._meta.constraints:
            if constraint.name in names and constraint.name not in present:
                schema_editor.add_constraint(model, constraint)

    return migrations.RunPython(restore, migrations.RunPython.noop)
