"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.crypto
import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('webhooks', '0001_initial'), ('webhooks', '0002_fewer_indexes'), ('webhooks', '0003_plural_labels')]

    initial = True

    dependencies = [
        ('events', '0001_initial'),
        ('events', '0002_fewer_indexes'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='WebhookDelivery',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('wd'), max_length=40, unique=True)),
                ('status', models.CharField(choices=[('pending', 'pending'), ('succeeded', 'succeeded'), ('failed', 'failed')], default='pending', max_length=10)),
                ('attempt_count', models.PositiveIntegerField(default=0)),
                ('schedule_position', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('claim_token', models.CharField(blank=True, default='', max_length=32)),
                ('last_status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('last_error', models.CharField(blank=True, default='', max_length=500)),
                ('created_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('event', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='webhook_deliveries', to='events.event')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='webhooks_we_status_afd94b_idx'), models.Index(fields=['finished_at'], name='webhooks_we_finishe_73bb89_idx')],
            },
        ),
        migrations.CreateModel(
            name='WebhookAttempt',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('number', models.PositiveIntegerField()),
                ('attempted_at', models.DateTimeField()),
                ('status_code', models.PositiveSmallIntegerField(blank=True, null=True)),
                ('duration_ms', models.PositiveIntegerField(default=0)),
                ('response_body', models.CharField(blank=True, default='', max_length=1024)),
                ('error', models.CharField(blank=True, default='', max_length=500)),
                ('succeeded', models.BooleanField(default=False)),
                ('delivery', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='attempts', to='webhooks.webhookdelivery')),
            ],
            options={
                'ordering': ['number'],
            },
        ),
        migrations.CreateModel(
            name='WebhookEndpoint',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('we'), max_length=40, unique=True)),
                ('url', models.URLField(max_length=2048)),
                ('description', models.CharField(blank=True, default='', max_length=500)),
                ('enabled_events', models.JSONField(default=list)),
                ('secret', cobrador.core.crypto.EncryptedTextField()),
                ('previous_secret', cobrador.core.crypto.EncryptedTextField(blank=True, default='')),
                ('previous_secret_expires_at', models.DateTimeField(blank=True, null=True)),
                ('status', models.CharField(choices=[('enabled', 'enabled'), ('disabled', 'disabled')], default='enabled', max_length=10)),
                ('disabled_reason', models.CharField(blank=True, default='', max_length=300)),
                ('disabled_at', models.DateTimeField(blank=True, null=True)),
                ('failing_since', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='webhook_endpoints', to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', 'status'], name='webhooks_we_organiz_8f8461_idx')],
            },
        ),
        migrations.AddField(
            model_name='webhookdelivery',
            name='endpoint',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='deliveries', to='webhooks.webhookendpoint'),
        ),
        migrations.AddIndex(
            model_name='webhookdelivery',
            index=models.Index(fields=['endpoint', '-id'], name='webhooks_we_endpoin_ab8ad6_idx'),
        ),
        migrations.AddConstraint(
            model_name='webhookdelivery',
            constraint=models.UniqueConstraint(fields=('event', 'endpoint'), name='webhook_delivery_once'),
        ),
        migrations.AlterModelOptions(
            name='webhookdelivery',
            options={'verbose_name_plural': 'webhook deliveries'},
        ),
        drop_pattern_indexes("webhooks_webhookdelivery"),
    ]
