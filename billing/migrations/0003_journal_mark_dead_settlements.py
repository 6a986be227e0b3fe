from django.db import migrations, models

# Databases used by an earlier embedded ledger already have the mark table (it was created on
# first use, with this exact shape): create it only when missing, and tell Django it is the model.
CREATE_MARK = (
    "CREATE TABLE IF NOT EXISTS billing_journal_mark "
    "(id INTEGER PRIMARY KEY, segment BIGINT NOT NULL, position BIGINT NOT NULL)"
)


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_applied_settlements"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[migrations.RunSQL(CREATE_MARK, migrations.RunSQL.noop)],
            state_operations=[
                migrations.CreateModel(
                    name="JournalMark",
                    fields=[
                        ("id", models.IntegerField(primary_key=True, serialize=False)),
                        ("segment", models.BigIntegerField()),
                        ("position", models.BigIntegerField()),
                    ],
                    options={"db_table": "billing_journal_mark"},
                ),
            ],
        ),
        migrations.CreateModel(
            name="DeadSettlement",
            fields=[
                ("id", models.CharField(max_length=64, primary_key=True, serialize=False)),
                ("payload", models.TextField()),
                ("error", models.TextField()),
                ("created_at", models.BigIntegerField(db_index=True)),
            ],
            options={"db_table": "billing_dead_settlements"},
        ),
    ]
