"""`field__in=[...]` on PostgreSQL as `field = ANY(%s)`, the list passed as one array parameter.

Django writes `IN (%s, %s, ...)` with a placeholder per value. psycopg then parses each such statement
in Python, placeholder by placeholder, and caches none with over 50 parameters: a sweep batch's
`pk__in=<500 ids>` queries spent about a tenth of its Python time there. With one array parameter the
statement text no longer depends on the list's length, so psycopg parses it once. PostgreSQL plans
`IN (list)` as `= ANY(array)` anyway.

Only lists whose prepared values are all ints or all strings go this way; anything else (and every
other database) keeps Django's own SQL.
"""

from django.core.exceptions import EmptyResultSet
from django.db.models import Field
from django.db.models.fields.related import ForeignObject
from django.db.models.fields.related_lookups import RelatedIn
from django.db.models.lookups import In
from django.utils.datastructures import OrderedSet

_ARRAY = "%s"  # process_rhs's answer for an array parameter (IN lists and subqueries start with "(")


class _ArrayParameterMixin:
    def process_rhs(self, compiler, connection):
        if connection.vendor != "postgresql" or not self.rhs_is_direct_value():
            return super().process_rhs(compiler, connection)
        values = OrderedSet(self.rhs)
        values.discard(None)  # NULL is never equal to anything
        if not values:
            raise EmptyResultSet
        sqls, params = self.batch_process_rhs(compiler, connection, values)
        kinds = {type(value) for value in params}
        if any(sql != "%s" for sql in sqls) or not (kinds == {int} or kinds == {str}):
            return "(" + ", ".join(sqls) + ")", params
        return _ARRAY, [list(params)]

    def get_rhs_op(self, connection, rhs):
        return f"= ANY({rhs})" if rhs == _ARRAY else super().get_rhs_op(connection, rhs)


class ArrayParameterIn(_ArrayParameterMixin, In):
    pass


class ArrayParameterRelatedIn(_ArrayParameterMixin, RelatedIn):
    pass


def register() -> None:
    Field.register_lookup(ArrayParameterIn)
    ForeignObject.register_lookup(ArrayParameterRelatedIn)
