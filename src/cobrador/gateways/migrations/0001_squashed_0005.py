"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.crypto
import cobrador.core.ids
import cobrador.gateways.models
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('gateways', '0001_initial'), ('gateways', '0002_sandbox_charge_and_fallback'), ('gateways', '0003_deleted_at_and_refund_keys'), ('gateways', '0004_drop_pattern_indexes'), ('gateways', '0005_provider_hosts_are_settings')]

    initial = True

    dependencies = [
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='GatewayConfig',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('gw'), max_length=40, unique=True)),
                ('provider', models.CharField(choices=[('sandbox', 'sandbox'), ('pagarme', 'pagarme'), ('kobana', 'kobana')], max_length=10)),
                ('methods', models.JSONField(default=list)),
                ('credentials', cobrador.core.crypto.EncryptedJSONField(blank=True, default=dict)),
                ('options', models.JSONField(blank=True, default=dict)),
                ('callback_token', models.CharField(default=cobrador.gateways.models._callback_token, max_length=64, unique=True)),
                ('active', models.BooleanField(default=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='gateways', to='organizations.organization')),
                ('is_fallback', models.BooleanField(default=False)),
                ('deleted_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'constraints': [models.UniqueConstraint(condition=models.Q(('is_fallback', True)), fields=('organization',), name='one_fallback_sandbox_per_organization')],
            },
        ),
        migrations.CreateModel(
            name='SandboxCharge',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('provider_charge_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('sbx_ch'), max_length=40, unique=True)),
                ('idempotency_key', models.CharField(max_length=255, unique=True)),
                ('reference', models.CharField(db_index=True, max_length=100)),
                ('method', models.CharField(max_length=10)),
                ('amount', models.BigIntegerField()),
                ('amount_refunded', models.BigIntegerField(default=0)),
                ('currency', models.CharField(default='BRL', max_length=3)),
                ('status', models.CharField(choices=[('succeeded', 'succeeded'), ('failed', 'failed'), ('pending', 'pending'), ('canceled', 'canceled'), ('refunded', 'refunded')], max_length=10)),
                ('card_token', models.CharField(blank=True, default='', max_length=100)),
                ('failure_code', models.CharField(blank=True, default='', max_length=64)),
                ('answered', models.CharField(blank=True, default='', max_length=10)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('paid_at', models.DateTimeField(blank=True, null=True)),
                ('canceled_at', models.DateTimeField(blank=True, null=True)),
                ('gateway', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='sandbox_charges', to='gateways.gatewayconfig')),
                ('refund_keys', models.JSONField(blank=True, default=list)),
            ],
        ),
        drop_pattern_indexes("gateways_sandboxcharge"),
    ]
