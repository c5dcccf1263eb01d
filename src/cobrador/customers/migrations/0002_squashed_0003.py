"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('customers', '0002_initial'), ('customers', '0003_billing_account_fiscal_fields')]

    dependencies = [
        ('customers', '0001_initial'),
        ('invoicing', '0001_initial'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.AddField(
            model_name='creditusage',
            name='invoice',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='credit_usages', to='invoicing.invoice'),
        ),
        migrations.AddField(
            model_name='paymentmethod',
            name='account',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='payment_methods', to='customers.billingaccount'),
        ),
        migrations.AddField(
            model_name='paymentmethod',
            name='organization',
            field=models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, to='organizations.organization'),
        ),
        migrations.AddIndex(
            model_name='billingaccount',
            index=models.Index(fields=['organization', 'status'], name='customers_b_organiz_25ecdd_idx'),
        ),
        migrations.AddIndex(
            model_name='billingaccount',
            index=models.Index(fields=['organization', 'email'], name='customers_b_organiz_ed2095_idx'),
        ),
        migrations.AddIndex(
            model_name='creditgrant',
            index=models.Index(fields=['account', 'currency', 'remaining'], name='customers_c_account_21949a_idx'),
        ),
        migrations.AddConstraint(
            model_name='creditgrant',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='credit_grant_positive'),
        ),
        migrations.AddConstraint(
            model_name='creditgrant',
            constraint=models.CheckConstraint(condition=models.Q(('remaining__gte', 0), ('remaining__lte', models.F('amount'))), name='credit_remaining_in_range'),
        ),
        migrations.AddConstraint(
            model_name='creditusage',
            constraint=models.CheckConstraint(condition=models.Q(('amount__gt', 0)), name='credit_usage_positive'),
        ),
        migrations.AddConstraint(
            model_name='paymentmethod',
            constraint=models.UniqueConstraint(condition=models.Q(('is_default', True), ('status', 'active')), fields=('account',), name='one_default_payment_method'),
        ),
        migrations.AddField(
            model_name='billingaccount',
            name='fiscal_email',
            field=models.EmailField(blank=True, default='', max_length=254),
        ),
        migrations.AddField(
            model_name='billingaccount',
            name='legal_name',
            field=models.CharField(blank=True, default='', max_length=115),
        ),
    ]
