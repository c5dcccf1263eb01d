"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models

from cobrador.core.migration_ops import drop_pattern_indexes


class Migration(migrations.Migration):

    replaces = [('payments', '0001_initial'), ('payments', '0002_paymentrefund'), ('payments', '0003_fewer_indexes'), ('payments', '0004_restore_one_charge_in_flight_per_invoice')]

    initial = True

    dependencies = [
        ('customers', '0002_initial'),
        ('gateways', '0001_initial'),
        ('invoicing', '0002_initial'),
        ('invoicing', '0003_fewer_foreign_key_indexes'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='Payment',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('pay'), max_length=40, unique=True)),
                ('method', models.CharField(choices=[('card', 'card'), ('bank_slip', 'bank_slip'), ('pix', 'pix')], max_length=10)),
                ('provider', models.CharField(max_length=10)),
                ('provider_charge_id', models.CharField(blank=True, default='', max_length=100)),
                ('provider_order_id', models.CharField(blank=True, default='', max_length=100)),
                ('amount', models.BigIntegerField()),
                ('amount_paid', models.BigIntegerField(default=0)),
                ('amount_refunded', models.BigIntegerField(default=0)),
                ('currency', models.CharField(default='BRL', max_length=3)),
                ('status', models.CharField(choices=[('pending', 'pending'), ('processing', 'processing'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('unknown', 'unknown'), ('canceled', 'canceled'), ('refunded', 'refunded')], default='processing', max_length=10)),
                ('failure_code', models.CharField(blank=True, default='', max_length=64)),
                ('failure_message', models.CharField(blank=True, default='', max_length=500)),
                ('decline_class', models.CharField(blank=True, default='', max_length=4)),
                ('idempotency_key', models.CharField(max_length=100, unique=True)),
                ('source', models.CharField(default='invoice', max_length=10)),
                ('attempt_number', models.PositiveSmallIntegerField(default=0)),
                ('boleto_url', models.URLField(blank=True, default='', max_length=1000)),
                ('boleto_barcode', models.CharField(blank=True, default='', max_length=100)),
                ('boleto_line', models.CharField(blank=True, default='', max_length=100)),
                ('pix_copy_paste', models.TextField(blank=True, default='')),
                ('pix_qr_code_url', models.URLField(blank=True, default='', max_length=1000)),
                ('expires_at', models.DateTimeField(blank=True, null=True)),
                ('reconcile_attempts', models.PositiveSmallIntegerField(default=0)),
                ('next_reconcile_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('paid_at', models.DateTimeField(blank=True, null=True)),
                ('failed_at', models.DateTimeField(blank=True, null=True)),
                ('canceled_at', models.DateTimeField(blank=True, null=True)),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='payments', to='customers.billingaccount')),
                ('gateway', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, to='gateways.gatewayconfig')),
                ('invoice', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.PROTECT, related_name='payments', to='invoicing.invoice')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='payments', to='organizations.organization')),
                ('payment_method', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, to='customers.paymentmethod')),
            ],
            options={
                'indexes': [models.Index(fields=['invoice', 'status'], name='payments_pa_invoice_e2429a_idx'), models.Index(fields=['status', 'next_reconcile_at'], name='payments_pa_status_006417_idx'), models.Index(fields=['provider', 'provider_charge_id'], name='payments_pa_provide_bb77df_idx'), models.Index(fields=['organization', '-id'], name='payments_pa_organiz_32071f_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status__in', ['processing', 'unknown'])), fields=('invoice',), name='one_charge_in_flight_per_invoice')],
            },
        ),
        migrations.CreateModel(
            name='PaymentRefund',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('re'), max_length=40, unique=True)),
                ('amount', models.BigIntegerField()),
                ('reason', models.CharField(blank=True, default='', max_length=500)),
                ('status', models.CharField(choices=[('processing', 'processing'), ('succeeded', 'succeeded'), ('failed', 'failed'), ('unknown', 'unknown')], default='processing', max_length=10)),
                ('idempotency_key', models.CharField(max_length=100, unique=True)),
                ('failure_message', models.CharField(blank=True, default='', max_length=500)),
                ('attempts', models.PositiveSmallIntegerField(default=1)),
                ('next_attempt_at', models.DateTimeField(blank=True, null=True)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization')),
                ('payment', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='refunds', to='payments.payment')),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'next_attempt_at'], name='payments_pa_status_73e0a7_idx')],
                'constraints': [models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='refund_amount_positive')],
            },
        ),
        drop_pattern_indexes("payments_payment"),
    ]
