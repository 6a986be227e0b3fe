from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0005_window_counters"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="log",
            index=models.Index(fields=["user_id", "id"], name="idx_logs_user_id_id"),
        ),
        migrations.AddIndex(
            model_name="log",
            index=models.Index(fields=["token_name", "model_name", "id"], name="idx_logs_token_model_id"),
        ),
        migrations.AddIndex(
            model_name="log",
            index=models.Index(fields=["user_id", "type", "created_at"], name="idx_logs_user_type_created"),
        ),
    ]
