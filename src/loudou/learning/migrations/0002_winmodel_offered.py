from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("learning", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="winmodel",
            name="offered",
            field=models.BooleanField(default=True, verbose_name="offered"),
        ),
    ]
