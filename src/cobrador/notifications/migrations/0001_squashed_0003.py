"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.crypto
import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('notifications', '0001_initial'), ('notifications', '0002_fewer_indexes'), ('notifications', '0003_plural_labels')]

    initial = True

    dependencies = [
        ('customers', '0002_initial'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='NotificationOptOut',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('type', models.CharField(max_length=40)),
                ('channel', models.CharField(max_length=10)),
                ('source', models.CharField(default='api', max_length=20)),
                ('created_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notification_opt_outs', to='customers.billingaccount')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('account', 'type', 'channel'), name='notification_opt_out_once')],
            },
        ),
        migrations.CreateModel(
            name='NotificationTemplate',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('ntpl'), max_length=40, unique=True)),
                ('type', models.CharField(max_length=40)),
                ('locale', models.CharField(max_length=5)),
                ('subject', models.TextField()),
                ('html_body', models.TextField()),
                ('text_body', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='notification_templates', to='organizations.organization')),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('organization', 'type', 'locale'), name='notification_template_once')],
            },
        ),
        migrations.CreateModel(
            name='Notice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('ntf'), max_length=40, unique=True)),
                ('type', models.CharField(max_length=40)),
                ('channel', models.CharField(choices=[('email', 'email'), ('in_app', 'in_app'), ('webhook', 'webhook')], max_length=10)),
                ('dedupe_key', models.CharField(max_length=255, unique=True)),
                ('locale', models.CharField(default='pt-BR', max_length=5)),
                ('recipient', models.CharField(blank=True, default='', max_length=2048)),
                ('context', models.JSONField(default=dict)),
                ('link', models.CharField(blank=True, default='', max_length=2048)),
                ('is_test', models.BooleanField(default=False)),
                ('status', models.CharField(choices=[('pending', 'pending'), ('sent', 'sent'), ('failed', 'failed'), ('parked', 'parked')], default='pending', max_length=10)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('claim_token', models.CharField(blank=True, default='', max_length=32)),
                ('last_error', models.CharField(blank=True, default='', max_length=1000)),
                ('subject', models.CharField(blank=True, default='', max_length=500)),
                ('body_text', models.TextField(blank=True, default='')),
                ('read_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('account', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='notices', to='customers.billingaccount')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='notices', to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='notificatio_status_caf477_idx'), models.Index(fields=['account', 'channel', '-id'], name='notificatio_account_6bbc6a_idx'), models.Index(fields=['organization', 'type', 'locale', 'status'], name='notificatio_organiz_aef452_idx')],
            },
        ),
        migrations.CreateModel(
            name='AccountNotificationSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('webhook_url', models.URLField(blank=True, default='', max_length=2048)),
                ('webhook_secret', cobrador.core.crypto.EncryptedTextField(blank=True, default='')),
                ('updated_at', models.DateTimeField()),
                ('account', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='notification_settings', to='customers.billingaccount')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'verbose_name_plural': 'account notification settings',
            },
        ),
        migrations.CreateModel(
            name='NotificationSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('ns'), max_length=40, unique=True)),
                ('invoice_due_soon_days', models.PositiveSmallIntegerField(default=3)),
                ('invoice_overdue_days', models.JSONField(default=list)),
                ('trial_ending_days', models.PositiveSmallIntegerField(default=3)),
                ('card_expiring_days', models.JSONField(default=list)),
                ('renewal_prompt_days', models.PositiveSmallIntegerField(default=15)),
                ('update_card_url', models.CharField(blank=True, default='', max_length=2048)),
                ('confirm_renewal_url', models.CharField(blank=True, default='', max_length=2048)),
                ('mandatory_types', models.JSONField(default=list)),
                ('organization_locale', models.CharField(default='pt-BR', max_length=5)),
                ('updated_at', models.DateTimeField()),
                ('organization', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='notification_settings', to='organizations.organization')),
            ],
            options={
                'verbose_name_plural': 'notification settings',
            },
        ),
        drop_pattern_indexes("notifications_notice"),
    ]
