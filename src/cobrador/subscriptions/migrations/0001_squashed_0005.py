"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

import cobrador.core.ids
import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('subscriptions', '0001_initial'), ('subscriptions', '0002_started_at_uninvoiced_since'), ('subscriptions', '0003_fewer_foreign_key_indexes'), ('subscriptions', '0004_trial_will_end_sent_for'), ('subscriptions', '0005_subscription_settings')]

    initial = True

    dependencies = [
        ('catalog', '0001_initial'),
        ('customers', '0002_initial'),
        ('notifications', '0002_fewer_indexes'),
        ('organizations', '0001_initial'),
    ]

    operations = [
        migrations.CreateModel(
            name='SubscriptionSettings',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('renewal_prompt_days', models.PositiveSmallIntegerField()),
                ('updated_at', models.DateTimeField()),
                ('organization', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='subscription_settings', to='organizations.organization')),
            ],
        ),
        migrations.CreateModel(
            name='Subscription',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('public_id', models.CharField(default=cobrador.core.ids._PublicIdFactory('sub'), max_length=40, unique=True)),
                ('quantity', models.PositiveIntegerField(default=1)),
                ('coupon_periods_used', models.PositiveIntegerField(default=0)),
                ('status', models.CharField(choices=[('trialing', 'trialing'), ('active', 'active'), ('past_due', 'past_due'), ('paused', 'paused'), ('canceled', 'canceled'), ('expired', 'expired')], max_length=10)),
                ('trial_end', models.DateTimeField(blank=True, null=True)),
                ('current_period_start', models.DateTimeField()),
                ('current_period_end', models.DateTimeField()),
                ('billing_anchor_day', models.PositiveSmallIntegerField()),
                ('commitment_months', models.PositiveSmallIntegerField(default=0)),
                ('commitment_end', models.DateTimeField(blank=True, null=True)),
                ('renewal_mode', models.CharField(choices=[('auto', 'auto'), ('prompt', 'prompt')], default='auto', max_length=6)),
                ('renewal_confirmed_at', models.DateTimeField(blank=True, null=True)),
                ('renewal_prompted_at', models.DateTimeField(blank=True, null=True)),
                ('cancel_at_period_end', models.BooleanField(default=False)),
                ('cancel_at', models.DateTimeField(blank=True, null=True)),
                ('cancellation_reason', models.CharField(blank=True, default='', max_length=500)),
                ('canceled_at', models.DateTimeField(blank=True, null=True)),
                ('ended_at', models.DateTimeField(blank=True, null=True)),
                ('pending_quantity', models.PositiveIntegerField(blank=True, null=True)),
                ('metadata', models.JSONField(blank=True, default=dict)),
                ('created_at', models.DateTimeField()),
                ('updated_at', models.DateTimeField()),
                ('account', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='subscriptions', to='customers.billingaccount')),
                ('coupon', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, to='catalog.coupon')),
                ('organization', models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='subscriptions', to='organizations.organization')),
                ('payment_method', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.SET_NULL, to='customers.paymentmethod')),
                ('pending_plan', models.ForeignKey(blank=True, db_index=False, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='catalog.plan')),
                ('plan', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='subscriptions', to='catalog.plan')),
                ('started_at', models.DateTimeField()),
                ('uninvoiced_since', models.DateTimeField(blank=True, null=True)),
                ('trial_will_end_sent_for', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'indexes': [models.Index(fields=['status', 'current_period_end'], name='subscriptio_status_3d1ac5_idx'), models.Index(fields=['status', 'cancel_at'], name='subscriptio_status_bc7c77_idx'), models.Index(fields=['status', 'trial_end'], name='subscriptio_status_7117da_idx'), models.Index(fields=['organization', 'status'], name='subscriptio_organiz_3cb096_idx'), models.Index(fields=['status', 'commitment_end'], name='subscriptio_status_23507d_idx')],
            },
        ),
    ]
