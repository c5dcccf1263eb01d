"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('callbacks', '0001_initial'), ('callbacks', '0002_initial'), ('callbacks', '0003_index_received_waiting'), ('callbacks', '0004_drop_pattern_indexes')]

    initial = True

    dependencies = [
        ('gateways', '0001_initial'),
        ('gateways', '0003_deleted_at_and_refund_keys'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='GatewayCallback',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('cb'), max_length=40, unique=True)),
                ('provider', models.CharField(max_length=10)),
                ('event_id', models.CharField(blank=True, default='', max_length=200)),
                ('event_type', models.CharField(blank=True, default='', max_length=100)),
                ('headers', models.JSONField(default=dict)),
                ('body', models.BinaryField()),
                ('status', models.CharField(choices=[('received', 'received'), ('processing', 'processing'), ('processed', 'processed'), ('failed', 'failed'), ('rejected', 'rejected'), ('ignored', 'ignored')], default='received', max_length=10)),
                ('attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('error', models.TextField(blank=True, default='')),
                ('changes', models.JSONField(blank=True, default=list)),
                ('received_at', models.DateTimeField()),
                ('processed_at', models.DateTimeField(blank=True, null=True)),
                ('gateway', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='gateways.gatewayconfig')),
                ('organization', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='callbacks_g_status_8b78a1_idx'), models.Index(fields=['organization', '-id'], name='callbacks_g_organiz_ecbab8_idx'), models.Index(fields=['status', 'received_at'], name='callbacks_g_status_465fb6_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('event_id', ''), _negated=True), fields=('provider', 'event_id'), name='callback_once_per_provider_event')],
            },
        ),
        drop_pattern_indexes("callbacks_gatewaycallback"),
    ]
