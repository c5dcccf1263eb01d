"""Bulk writes for the sweeps, faster than the ORM's where the ORM dominated a batch's time.

`update_rows` replaces `bulk_update`, which builds one CASE WHEN per row and field and spent about
three quarters of a renewal batch compiling it: here the change is COPY into a staging table and one
`UPDATE ... FROM` it on PostgreSQL, and a parameterized `UPDATE ... WHERE id = ?` run with executemany
on SQLite (sqlite3 loops in C).
`insert_rows` replaces `bulk_create` for invoices and their lines (see its docstring), and `insert_objects`
for model instances: events and what their sinks fan out. Sweeps, charging and callback processing all
write their batches through these.
Both run in the caller's transaction and write exactly the values given (no signals, no defaults).
"""

import contextlib
import zlib

from django.db import connections, router, transaction


def update_rows(objs: list, fields: list[str]) -> None:
    """Write `fields` (model field names) of every object in `objs` (one model) to its row."""
    if not objs or not fields:
        return
    model = type(objs[0])
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    rows = _adapted(connection, columns, [[getattr(obj, field.attname) for field in columns] + [obj.pk]
                                          for obj in objs])
    table, pk = quote(meta.db_table), quote(meta.pk.column)
    if connection.vendor == "postgresql":
        # COPY the new values into a staging table, then one UPDATE joins it on the primary key: 40% of
        # the client CPU of passing them as arrays, which the driver quotes value by value in Python.
        # Always in a transaction (a caller in autocommit gets one): the staging rows go at each commit.
        column_list = ", ".join(quote(field.column) for field in [*columns, meta.pk])
        assignments = ", ".join(f"{quote(field.column)} = s.{quote(field.column)}" for field in columns)
        with (transaction.atomic(using=alias, savepoint=False), _driver_cursor(connection) as cursor,
              _staged(cursor, meta.db_table, column_list, rows) as staging):
            cursor.execute(f"UPDATE {table} SET {assignments} FROM {staging} s WHERE {table}.{pk} = s.{pk}")
        return
    with connection.cursor() as cursor:
        assignments = ", ".join(f"{quote(field.column)} = %s" for field in columns)
        cursor.executemany(f"UPDATE {table} SET {assignments} WHERE {pk} = %s", rows)


@contextlib.contextmanager
def _driver_cursor(connection):
    """The driver's own cursor (for COPY), with its errors raised as Django's (IntegrityError, ...)."""
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.cursor() as cursor:
        yield cursor


@contextlib.contextmanager
def _staged(cursor, db_table: str, column_list: str, rows: list):
    """`rows` copied into a temporary table with the columns `column_list` of `db_table` (created once per
    connection), for the statement that reads them; emptied afterwards, for a further call in this
    transaction (and at commit, for the next one)."""
    staging = f'"staging_{db_table}_{zlib.crc32(column_list.encode()):08x}"'
    cursor.execute(f'CREATE TEMPORARY TABLE IF NOT EXISTS {staging} ON COMMIT DELETE ROWS AS '
                   f'SELECT {column_list} FROM "{db_table}" WITH NO DATA')
    _copy_rows(cursor, staging, column_list, rows)
    yield staging
    cursor.execute(f"DELETE FROM {staging}")


def _copy_rows(cursor, table: str, column_list: str, rows: list) -> None:
    with cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


class JSONText(str):
    """A value for a JSON column, serialized already (events are serialized once, to check them): written
    as it is."""


def _json_adapter(field, connection):
    def adapt(value):
        return value if type(value) is JSONText else field.get_db_prep_save(value, connection)
    return adapt


def _own_field_type(field) -> bool:
    """Our own field types (encrypted text and JSON) prepare their values themselves."""
    return type(field).__module__.startswith("cobrador.")


def _sqlite_adapter(field, connection):
    if _own_field_type(field):
        return lambda value: field.get_db_prep_save(value, connection)
    kind = field.get_internal_type()
    if kind == "DateTimeField":
        # What connection.ops.adapt_datetimefield_value writes for an aware datetime, at a third of the cost.
        zone = connection.timezone
        return lambda value: str(value.astimezone(zone).replace(tzinfo=None))
    if kind == "DateField":
        return connection.ops.adapt_datefield_value
    if kind == "JSONField":
        return _json_adapter(field, connection)
    if kind == "DecimalField":
        return lambda value: field.get_db_prep_save(value, connection)
    return None


def _postgresql_adapter(field, connection):
    if field.get_internal_type() == "JSONField":
        return _json_adapter(field, connection)
    if _own_field_type(field):
        return lambda value: field.get_db_prep_save(value, connection)
    return None  # psycopg adapts ints, strings, dates and aware datetimes itself


def _adapted(connection, columns: list, rows: list) -> list:
    """`rows` with each value turned into what the database driver takes for its column."""
    make_adapter = _postgresql_adapter if connection.vendor == "postgresql" else _sqlite_adapter
    adapters = [(i, adapter) for i, field in enumerate(columns) if (adapter := make_adapter(field, connection))]
    if not adapters:
        return rows
    rows = [list(row) for row in rows]
    for row in rows:
        for i, adapt in adapters:
            if row[i] is not None:
                row[i] = adapt(row[i])
    return rows


def build(model, **values):
    """A new, unsaved `model` instance, as `model(**values)` makes it, for the sweeps that make thousands:
    the constructor's positional path, at about half the cost. `values` are by field name or attname;
    a relation given by name takes the related instance, cached on the new one. Every other field gets
    its default."""
    plan = _plans.get(model) or _plans.setdefault(model, _BuildPlan(model))
    args = plan.defaults.copy()
    related = []
    for key, value in values.items():
        try:
            i, relation = plan.positions[key]
        except KeyError:
            raise TypeError(f"{model.__name__} has no field {key!r}") from None
        if relation is not None:
            related.append((relation, value))
            value = None if value is None else getattr(value, relation.target_field.attname)
        args[i] = value
    for i, make_default in plan.made_defaults:
        if args[i] is _UNSET:
            args[i] = make_default()
    instance = model(*args)
    for relation, value in related:
        relation.set_cached_value(instance, value)
    return instance


_UNSET = object()


class _BuildPlan:
    """A model's concrete fields for `build`: each one's position, and its default (made per instance
    when it is a callable, such as a public id)."""

    def __init__(self, model):
        self.positions, self.defaults, self.made_defaults = {}, [], []
        for i, field in enumerate(model._meta.concrete_fields):
            self.positions[field.attname] = (i, None)
            self.positions[field.name] = (i, field if field.is_relation else None)
            if field.has_default() and callable(field.default):
                self.defaults.append(_UNSET)
                self.made_defaults.append((i, field.default))
            else:
                self.defaults.append(field.get_default())


_plans: dict = {}


def insert_objects(objs: list, *, returning_ids: bool = False, ignore_conflicts: bool = False) -> None:
    """Insert unsaved model instances (one model, defaults already filled in by their constructor) like
    bulk_create, at the cost of `insert_rows`. With `returning_ids` each object gets its primary key."""
    if not objs:
        return
    model = type(objs[0])
    fields = [field for field in model._meta.concrete_fields if not field.primary_key]
    rows = [tuple(getattr(obj, field.attname) for field in fields) for obj in objs]
    ids = insert_rows(model, [field.name for field in fields], rows, returning_ids=returning_ids,
                      ignore_conflicts=ignore_conflicts)
    for obj, pk in zip(objs, ids or (), strict=False):  # no ids unless returning_ids
        obj.pk = pk
        obj._state.adding = False


# Up to this many rows, insert_rows writes one INSERT ... VALUES on PostgreSQL rather than COPY.
SMALL_INSERT_ROWS = 20


def _values_insert(table: str, column_list: str, width: int, rows: list[tuple], suffix: str = "") -> tuple:
    """One multi-row INSERT ... VALUES of `rows` and its flat parameters, `suffix` appended."""
    one_row = "(" + ", ".join(["%s"] * width) + ")"
    return (f"INSERT INTO {table} ({column_list}) VALUES {', '.join([one_row] * len(rows))}{suffix}",
            [value for row in rows for value in row])


def insert_rows(model, fields: list[str], rows: list[tuple], *, returning_ids: bool = False,
                ignore_conflicts: bool = False) -> list[int] | None:
    """Insert `rows` (tuples in the order of `fields`, model field names) into `model`'s table in the
    caller's transaction; with `returning_ids`, return the new primary keys in row order. With
    `ignore_conflicts`, rows that would break a unique constraint are skipped (not with `returning_ids`).

    bulk_create spends ~150 us a row building model instances and SQL; this is the same insert at
    ~20 us: PostgreSQL COPY (ids drawn from the table's sequence first; through a staging table when
    conflicts are ignored), SQLite multi-row INSERT ... RETURNING. No model signals, no defaults: every
    NOT NULL column must be given.
    """
    if returning_ids and ignore_conflicts:
        raise ValueError("insert_rows cannot return ids of rows it may skip")
    if not rows:
        return [] if returning_ids else None
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    rows = _adapted(connection, columns, rows)
    table = quote(meta.db_table)
    column_list = ", ".join(quote(field.column) for field in columns)

    if connection.vendor == "postgresql" and len(rows) <= SMALL_INSERT_ROWS:
        # A request's few rows: one INSERT ... VALUES, one round trip. COPY pays for its setup (the ids
        # first; a staging table to skip conflicts: four statements) and only wins on a batch.
        suffix = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        if returning_ids:
            suffix += f" RETURNING {quote(meta.pk.column)}"  # in VALUES order, as bulk_create relies on
        # Through the driver's cursor, as COPY is: a caller counting the ORM's queries sees neither path,
        # so a batch's count does not change when its size crosses SMALL_INSERT_ROWS.
        with transaction.atomic(using=alias, savepoint=False), _driver_cursor(connection) as cursor:
            cursor.execute(*_values_insert(table, column_list, len(columns), rows, suffix))
            return [row[0] for row in cursor.fetchall()] if returning_ids else None

    if connection.vendor == "postgresql":
        with transaction.atomic(using=alias, savepoint=False), _driver_cursor(connection) as cursor:
            if ignore_conflicts:
                # COPY cannot skip conflicting rows: copy into a temporary table of the same columns,
                # then move the rows over with ON CONFLICT DO NOTHING.
                with _staged(cursor, meta.db_table, column_list, rows) as staging:
                    cursor.execute(f"INSERT INTO {table} ({column_list}) SELECT {column_list} FROM {staging} "
                                   f"ON CONFLICT DO NOTHING")
                return None
            ids = None
            if returning_ids:
                cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
                               (meta.db_table, meta.pk.column, len(rows)))
                ids = [row[0] for row in cursor.fetchall()]
                column_list = f"{quote(meta.pk.column)}, {column_list}"
                rows = [(pk, *row) for pk, row in zip(ids, rows, strict=True)]
            _copy_rows(cursor, table, column_list, rows)
            return ids

    with connection.cursor() as cursor:
        if not returning_ids:
            placeholders = ", ".join(["%s"] * len(columns))
            skip = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""  # unique conflicts only, as on PostgreSQL
            cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({placeholders}){skip}", rows)
            return None
        ids = []
        chunk = max(1, 32000 // len(columns))  # SQLite allows 32766 parameters a statement
        for start in range(0, len(rows), chunk):
            cursor.execute(*_values_insert(table, column_list, len(columns), rows[start:start + chunk],
                                           f" RETURNING {quote(meta.pk.column)}"))
            # AUTOINCREMENT hands one statement's rows increasing ids in VALUES order, whatever
            # order RETURNING reports them in.
            ids.extend(sorted(row[0] for row in cursor.fetchall()))
        return ids
