from django.db import migrations, models


def started_at_from_created_at(apps, schema_editor):
    Subscription = apps.get_model("subscriptions", "Subscription")
    Subscription.objects.update(started_at=models.F("created_at"))


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="subscription",
            name="started_at",
            field=models.DateTimeField(null=True),
        ),
        migrations.RunPython(started_at_from_created_at, migrations.RunPython.noop, elidable=True),
        migrations.AlterField(
            model_name="subscription",
            name="started_at",
            field=models.DateTimeField(),
        ),
        migrations.AddField(
            model_name="subscription",
            name="uninvoiced_since",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddIndex(
            model_name="subscription",
            index=models.Index(fields=["status", "commitment_end"], name="subscriptio_status_23507d_idx"),
        ),
    ]
