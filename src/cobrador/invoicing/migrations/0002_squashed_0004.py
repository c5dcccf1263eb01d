"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('invoicing', '0002_initial'), ('invoicing', '0003_fewer_foreign_key_indexes'), ('invoicing', '0004_one_off_and_proration_invoices')]

    dependencies = [
        ('catalog', '0001_initial'),
        ('customers', '0002_initial'),
        ('invoicing', '0001_initial'),
        ('organizations', '0001_initial'),
        ('subscriptions', '0001_initial'),
        ('subscriptions', '0002_started_at_uninvoiced_since'),
    ]

    operations = [
        migrations.AddField(
            model_name='invoice',
            name='subscription',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='invoices', to='subscriptions.subscription'),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='invoice',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='lines', to='invoicing.invoice'),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='plan',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='catalog.plan'),
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(fields=['organization', 'status'], name='invoicing_i_organiz_180859_idx'),
        ),
        migrations.AddIndex(
            model_name='invoice',
            index=models.Index(fields=['account', 'status'], name='invoicing_i_account_1fe6a8_idx'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(fields=('subscription', 'period_start'), name='invoice_per_subscription_period'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.UniqueConstraint(fields=('organization', 'number'), name='invoice_number_once'),
        ),
        migrations.AddConstraint(
            model_name='invoice',
            constraint=models.CheckConstraint(condition=models.Q(('total__gte', 0), ('amount_due__gte', 0), ('discount__gte', 0), ('credit_applied__gte', 0)), name='invoice_amounts_not_negative'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='account',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='invoices', to='customers.billingaccount'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='coupon',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='catalog.coupon'),
        ),
        migrations.AlterField(
            model_name='invoice',
            name='organization',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='invoices', to='organizations.organization'),
        ),
        migrations.AddField(
            model_name='invoice',
            name='collection_method',
            field=models.CharField(choices=[('charge', 'charge'), ('send', 'send')], db_default='charge', default='charge', max_length=6),
        ),
        migrations.AddField(
            model_name='invoice',
            name='kind',
            field=models.CharField(choices=[('period', 'period'), ('proration', 'proration'), ('one_off', 'one_off')], db_default='period', default='period', max_length=9),
        ),
        migrations.AddField(
            model_name='invoice',
            name='payment_method',
            field=models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to='customers.paymentmethod'),
        ),
        migrations.AddField(
            model_name='invoiceline',
            name='service_code',
            field=models.CharField(blank=True, db_default='', default='', max_length=20),
        ),
    ]
