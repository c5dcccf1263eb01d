from django.db import migrations

from cobrador.core.migration_ops import restore_constraints


class Migration(migrations.Migration):
    """0003's AlterField of `invoice` (db_index off) dropped the partial unique index of
    one_charge_in_flight_per_invoice on PostgreSQL along with the foreign key's own index."""

    dependencies = [
        ('payments', '0003_fewer_indexes'),
    ]

    operations = [
        restore_constraints("payments", "payment", "one_charge_in_flight_per_invoice"),
    ]
