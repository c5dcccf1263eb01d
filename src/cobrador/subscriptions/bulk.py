"""A faster `bulk_update` for the sweeps.

Django's `bulk_update` builds one CASE WHEN per row and field and spends most of a sweep's time
compiling it (measured: about three quarters of a renewal batch). Here the same change is one
parameterized `UPDATE ... WHERE id = %s` run with `executemany` (sqlite3 loops in C; psycopg
pipelines the statements), inside the caller's transaction.
"""

from django.db import connections, router


def update_rows(objs: list, fields: list[str]) -> None:
    """Write `fields` (model field names) of every object in `objs` (one model) to its row."""
    if not objs or not fields:
        return
    model = type(objs[0])
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
    sql = f"UPDATE {quote(meta.db_table)} SET {assignments} WHERE {quote(meta.pk.column)} = %s"
    params = [[field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns] + [obj.pk]
              for obj in objs]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
