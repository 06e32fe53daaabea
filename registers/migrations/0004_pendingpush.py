from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('registers', '0003_versions_at_most_2_53'),
    ]

    operations = [
        migrations.CreateModel(
            name='PendingPush',
            fields=[
                ('register_id', models.CharField(max_length=32, primary_key=True, serialize=False)),
                ('version', models.PositiveBigIntegerField(default=1)),
                ('noted_at', models.DateTimeField(db_index=True)),
                ('deleted_at', models.DateTimeField(blank=True, null=True)),
            ],
        ),
    ]
