import django.db.models.deletion
from django.db import migrations, models


def copy_renewal_prompt_days(apps, schema_editor):
    """renewal_prompt_days moves from notifications.NotificationSettings: every organization keeps its value."""
    NotificationSettings = apps.get_model("notifications", "NotificationSettings")
    SubscriptionSettings = apps.get_model("subscriptions", "SubscriptionSettings")
    rows = NotificationSettings.objects.values_list("organization_id", "renewal_prompt_days", "updated_at")
    SubscriptionSettings.objects.bulk_create(
        [SubscriptionSettings(organization_id=org_id, renewal_prompt_days=days, updated_at=updated_at)
         for org_id, days, updated_at in rows.iterator()], batch_size=1000)


def copy_back(apps, schema_editor):
    NotificationSettings = apps.get_model("notifications", "NotificationSettings")
    SubscriptionSettings = apps.get_model("subscriptions", "SubscriptionSettings")
    for org_id, days in SubscriptionSettings.objects.values_list("organization_id", "renewal_prompt_days"):
        NotificationSettings.objects.filter(organization_id=org_id).update(renewal_prompt_days=days)


class Migration(migrations.Migration):

    dependencies = [
        ('organizations', '0001_initial'),
        ('subscriptions', '0004_trial_will_end_sent_for'),
        ('notifications', '0002_fewer_indexes'),
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
        migrations.RunPython(copy_renewal_prompt_days, copy_back, elidable=True),
    ]
