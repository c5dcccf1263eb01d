"""A squash of the migrations it replaces, for new databases: the same schema in fewer operations
(each operation re-renders every model related to the one it touches, which made an empty database
slow to migrate). Databases that applied the replaced migrations keep them."""

from django.db import migrations, models


class Migration(migrations.Migration):

    replaces = [('jobs', '0001_initial'), ('jobs', '0002_heartbeat_state_alerts')]

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='JobState',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('job_name', models.CharField(max_length=64, unique=True)),
                ('last_checked_at', models.DateTimeField(blank=True, null=True)),
                ('last_success_at', models.DateTimeField(blank=True, null=True)),
                ('typical_seconds', models.FloatField(blank=True, null=True)),
                ('incident_state', models.CharField(blank=True, default='', max_length=8)),
                ('incident_started_at', models.DateTimeField(blank=True, null=True)),
                ('updated_at', models.DateTimeField()),
            ],
        ),
        migrations.CreateModel(
            name='FailedItem',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('job_name', models.CharField(max_length=64)),
                ('item_key', models.CharField(max_length=100)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField()),
                ('first_failed_at', models.DateTimeField()),
                ('last_failed_at', models.DateTimeField()),
                ('parked', models.BooleanField(default=False)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('job_name', 'item_key'), name='failed_item_once')],
            },
        ),
        migrations.CreateModel(
            name='JobRun',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('job_name', models.CharField(max_length=64)),
                ('as_of', models.DateTimeField()),
                ('trigger', models.CharField(default='schedule', max_length=16)),
                ('status', models.CharField(choices=[('running', 'running'), ('succeeded', 'succeeded'), ('partial', 'partial'), ('failed', 'failed'), ('interrupted', 'interrupted'), ('abandoned', 'abandoned'), ('skipped', 'skipped')], default='running', max_length=16)),
                ('started_at', models.DateTimeField()),
                ('finished_at', models.DateTimeField(blank=True, null=True)),
                ('items_done', models.PositiveIntegerField(default=0)),
                ('items_failed', models.PositiveIntegerField(default=0)),
                ('items_skipped', models.PositiveIntegerField(default=0)),
                ('counts', models.JSONField(blank=True, default=dict)),
                ('error', models.TextField(blank=True, default='')),
                ('heartbeat_at', models.DateTimeField(blank=True, null=True)),
            ],
            options={
                'indexes': [models.Index(fields=['job_name', '-started_at'], name='jobs_jobrun_job_nam_a62aa8_idx'), models.Index(fields=['started_at'], name='jobs_jobrun_started_a3d7d4_idx'), models.Index(fields=['status', 'heartbeat_at'], name='jobs_jobrun_status_0b173a_idx')],
                'constraints': [models.UniqueConstraint(condition=models.Q(('status', 'running')), fields=('job_name',), name='one_running_run_per_job')],
            },
        ),
        migrations.CreateModel(
            name='OpsAlert',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('job_name', models.CharField(max_length=64)),
                ('kind', models.CharField(choices=[('late', 'late'), ('stuck', 'stuck'), ('recovered', 'recovered')], max_length=9)),
                ('incident_started_at', models.DateTimeField()),
                ('subject', models.CharField(max_length=200)),
                ('body', models.TextField()),
                ('created_at', models.DateTimeField()),
                ('sent_at', models.DateTimeField(blank=True, null=True)),
                ('attempts', models.PositiveIntegerField(default=0)),
                ('last_error', models.TextField(blank=True, default='')),
            ],
            options={
                'indexes': [models.Index(fields=['sent_at'], name='jobs_opsale_sent_at_5a3811_idx')],
                'constraints': [models.UniqueConstraint(fields=('job_name', 'kind', 'incident_started_at'), name='one_ops_alert_per_incident')],
            },
        ),
    ]
