"""Operations shared by migrations."""

from django.db import migrations


def _creates_pattern_index(sql, tables) -> bool:
    return ("_pattern_ops" in str(sql) and hasattr(sql, "references_table")
            and any(sql.references_table(table) for table in tables))


def drop_pattern_indexes(*tables: str) -> migrations.RunPython:
    """On PostgreSQL, drop the `*_like` indexes of `tables`.

    Django gives every unique or indexed CharField a second PostgreSQL index (varchar_pattern_ops) for
    `LIKE 'prefix%'` lookups. Nothing here looks ids or keys up by prefix (the admin's search is
    `icontains`, which no btree serves), and on the tables that sweeps write in bulk each of them is one
    more index write per row. (An AlterField of such a field would create its index again.)"""

    def drop(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        # Those of tables created earlier in the same migration (a squash) are still deferred to its end:
        # they are never made.
        schema_editor.deferred_sql = [sql for sql in schema_editor.deferred_sql
                                      if not _creates_pattern_index(sql, tables)]
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

    # Elidable: a squash creates the model with its constraint and no AlterField to lose it.
    return migrations.RunPython(restore, migrations.RunPython.noop, elidable=True)
