"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('dunning', '0001_initial'), ('dunning', '0002_fewer_indexes')]

    initial = True

    dependencies = [
        ('customers', '0002_initial'),
        ('invoicing', '0002_initial'),
        ('invoicing', '0003_fewer_foreign_key_indexes'),
        ('organizations', '0001_initial'),
        ('payments', '0002_paymentrefund'),
    ]

    operations = [
        migrations.CreateModel(
            name='DelinquentAccount',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('dla'), max_length=40, unique=True)),
                ('status', models.CharField(choices=[('open', 'open'), ('suspended', 'suspended'), ('recovered', 'recovered'), ('written_off', 'written_off')], default='open', max_length=12)),
                ('opened_at', models.DateTimeField()),
                ('overdue_invoice_count', models.PositiveIntegerField(default=0)),
                ('overdue_amount', models.BigIntegerField(default=0)),
                ('currency', models.CharField(default='BRL', max_length=3)),
                ('suspended_at', models.DateTimeField(blank=True, null=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('updated_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='delinquencies', to='customers.billingaccount')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='delinquent_accounts', to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'opened_at'], name='dunning_del_status_07bd56_idx'), models.Index(fields=['organization', '-id'], name='dunning_del_organiz_537e2d_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status__in', ['open', 'suspended'])), fields=('account',), name='one_open_delinquency_per_account')],
            },
        ),
        migrations.CreateModel(
            name='DunningInvoice',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('status', models.CharField(choices=[('scheduled', 'scheduled'), ('running', 'running'), ('exhausted', 'exhausted'), ('recovered', 'recovered'), ('canceled', 'canceled'), ('failed', 'failed')], default='scheduled', max_length=10)),
                ('opened_at', models.DateTimeField()),
                ('attempts_made', models.PositiveSmallIntegerField(default=0)),
                ('next_attempt_number', models.PositiveSmallIntegerField(default=1)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('next_methods', models.JSONField(default=list)),
                ('last_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('lease_until', models.DateTimeField(blank=True, null=True)),
                ('lease_token', models.CharField(blank=True, default='', max_length=32)),
                ('hard_declined_cards', models.JSONField(default=list)),
                ('overdue_at', models.DateTimeField(blank=True, null=True)),
                ('closed_at', models.DateTimeField(blank=True, null=True)),
                ('error_count', models.PositiveSmallIntegerField(default=0)),
                ('last_error', models.TextField(blank=True, default='')),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.billingaccount')),
                ('delinquent_account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='invoices', to='dunning.delinquentaccount')),
                ('invoice', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='dunning', to='invoicing.invoice')),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='dunning_dun_status_02f46f_idx'), models.Index(fields=['status', 'lease_until'], name='dunning_dun_status_65f5b0_idx'), models.Index(fields=['account', 'status'], name='dunning_dun_account_628b6b_idx')],
            },
        ),
        migrations.CreateModel(
            name='RecoveryRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('rr'), max_length=40, unique=True)),
                ('attempt_number', models.PositiveSmallIntegerField()),
                ('method', models.CharField(choices=[('card', 'card'), ('bank_slip', 'bank_slip'), ('pix', 'pix')], max_length=10)),
                ('provider', models.CharField(blank=True, default='', max_length=10)),
                ('outcome', models.CharField(choices=[('processing', 'processing'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('issued', 'issued'), ('skipped', 'skipped'), ('error', 'error')], max_length=10)),
                ('decline_code', models.CharField(blank=True, default='', max_length=64)),
                ('message', models.CharField(blank=True, default='', max_length=500)),
                ('amount', models.BigIntegerField()),
                ('currency', models.CharField(default='BRL', max_length=3)),
                ('attempted_at', models.DateTimeField()),
                ('next_retry_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='+', to='customers.billingaccount')),
                ('invoice', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='recovery_records', to='invoicing.invoice')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
                ('payment', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='payments.payment')),
            ],
            options={
                'indexes': [models.Index(fields=['organization', '-id'], name='dunning_rec_organiz_576fd9_idx'), models.Index(fields=['organization', 'attempted_at'], name='dunning_rec_organiz_fdf6c5_idx')],
                'constraints': [models.UniqueConstraint(fields=('invoice', 'attempt_number', 'method'), name='one_recovery_record_per_invoice_attempt_method')],
            },
        ),
        drop_pattern_indexes("dunning_recoveryrecord"),
    ]
