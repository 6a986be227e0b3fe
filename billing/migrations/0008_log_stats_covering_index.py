from django.db import migrations, models, router

# PostgreSQL answers a user's log count and sums from the indexes alone only for heap pages its
# visibility map marks all-visible, which autovacuum does for an insert-only table after 20% new
# rows by default. On a table of millions of rows that leaves a heavy user's newest rows to be read
# from the heap one by one; vacuuming after 2% keeps that unmarked tail small.
TUNE = "ALTER TABLE logs SET (autovacuum_vacuum_insert_scale_factor = 0.02)"
UNTUNE = "ALTER TABLE logs RESET (autovacuum_vacuum_insert_scale_factor)"


def _run_on_logs(apps, schema_editor, sql: str) -> None:
    conn = schema_editor.connection
    if conn.vendor == "postgresql" and router.allow_migrate_model(
        conn.alias, apps.get_model("billing", "Log")
    ):
        schema_editor.execute(sql)


def tune(apps, schema_editor) -> None:
    _run_on_logs(apps, schema_editor, TUNE)


def untune(apps, schema_editor) -> None:
    _run_on_logs(apps, schema_editor, UNTUNE)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_verbose_names"),
    ]

    operations = [
        # The covering index first, so stats keep an index while the old one goes.
        migrations.AddIndex(
            model_name="log",
            index=models.Index(
                fields=["user_id", "type", "created_at", "quota", "prompt_tokens", "completion_tokens"],
                name="idx_logs_user_type_usage",
            ),
        ),
        migrations.RemoveIndex(
            model_name="log",
            name="idx_logs_user_type_created",
        ),
        migrations.RunPython(tune, untune),
    ]
