from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("conversations", "0004_json_mode_help"),
    ]

    operations = [
        migrations.AddField(
            model_name="message",
            name="usage_estimated",
            field=models.BooleanField(default=False, verbose_name="usage estimated"),
        ),
    ]
