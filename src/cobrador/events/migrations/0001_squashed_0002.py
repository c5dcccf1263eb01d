"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('events', '0001_initial'), ('events', '0002_fewer_indexes')]

    initial = True

    dependencies = [
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='Event',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('evt'), max_length=40, unique=True)),
                ('type', models.CharField(max_length=64)),
                ('data', models.JSONField()),
                ('created_at', models.DateTimeField()),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'type', 'created_at'], name='events_even_organiz_f062fb_idx'), models.Index(fields=['created_at'], name='events_even_created_52c227_idx')],
            },
        ),
        drop_pattern_indexes("events_event"),
    ]
