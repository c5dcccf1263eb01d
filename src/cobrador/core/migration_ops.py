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
