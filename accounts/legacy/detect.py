"""detect_schema: what kind of database is SQL_DSN / SQLITE_PATH pointing at?

- empty:    no tables (or only Django's own bookkeeping tables): a normal `migrate` builds it;
- ours:     django_migrations already lists our apps: a normal `migrate`;
- one-api:  One API's columns (channels.config, logs.request_id, users.lark_id) and no `setups` table;
- new-api:  New API's tables (a `setups` table, or New-API-only columns and no One API columns);
- foreign:  anything else. We refuse to touch it.

A database that an earlier (interrupted) adoption already started is recognised by the
`LegacyImportSource` option written before the first change.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.apps import apps
from django.db.backends.base.base import BaseDatabaseWrapper

from .columns import columns_of, table_names

OUR_APPS = ("accounts", "relay", "billing", "tasks")
SOURCE_OPTION = "LegacyImportSource"
# The tables both programs always have; a database without them is not theirs.
CORE_TABLES = {"users", "tokens", "channels", "options"}
NEW_API_ONLY_TABLES = {"setups", "midjourneys", "top_ups", "quota_data", "tasks"}


@dataclass
class Detected:
    kind: str  # empty | ours | one-api | new-api | foreign
    reason: str
    tables: set[str] = field(default_factory=set)

    @property
    def is_legacy(self) -> bool:
        return self.kind in ("one-api", "new-api")


def _django_owned_tables() -> set[str]:
    owned = {"django_migrations"}
    for model in apps.get_models(include_auto_created=True):
        if model._meta.app_label not in OUR_APPS:
            owned.add(model._meta.db_table)
    return owned


def _our_migrations_recorded(connection: BaseDatabaseWrapper) -> bool:
    with connection.cursor() as cursor:
        placeholders = ", ".join(["%s"] * len(OUR_APPS))
        cursor.execute(
            f"SELECT COUNT(*) FROM django_migrations WHERE app IN ({placeholders})", list(OUR_APPS)
        )
        return cursor.fetchone()[0] > 0


def _recorded_source(connection: BaseDatabaseWrapper) -> str | None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('value')} FROM options WHERE {qn('key')} = %s", [SOURCE_OPTION])
        row = cursor.fetchone()
    return row[0] if row and row[0] in ("one-api", "new-api") else None


def detect_schema(connection: BaseDatabaseWrapper, force_source: str | None = None) -> Detected:
    tables = table_names(connection)
    if "django_migrations" in tables and _our_migrations_recorded(connection):
        return Detected("ours", "django_migrations lists this gateway's migrations", tables)
    if tables <= _django_owned_tables():
        return Detected("empty", "no application tables yet", tables)
    missing = CORE_TABLES - tables
    if missing:
        return Detected("foreign", f"tables {sorted(missing)} are missing", tables)
    users = columns_of(connection, "users")
    if not {"id", "username", "password"} <= set(users):
        return Detected("foreign", "table users has no id/username/password columns", tables)
    if force_source:
        return Detected(force_source, "chosen with --legacy-source", tables)
    recorded = _recorded_source(connection)
    if recorded:
        return Detected(recorded, f"option {SOURCE_OPTION}={recorded} (an earlier adoption started)", tables)
    one_api_marks = _one_api_marks(connection, tables, users)
    if "setups" in tables:
        return Detected("new-api", "has New API's setups table", tables)
    if one_api_marks:
        return Detected("one-api", "has " + ", ".join(one_api_marks) + " and no setups table", tables)
    new_api_marks = _new_api_marks(connection, tables, users)
    if new_api_marks:
        return Detected("new-api", "has " + ", ".join(new_api_marks), tables)
    return Detected(
        "foreign",
        "users/tokens/channels exist but neither One API's nor New API's marker columns do; "
        "re-run with --legacy-source=one-api or --legacy-source=new-api if you know which it is",
        tables,
    )


def _one_api_marks(connection: BaseDatabaseWrapper, tables: set[str], users: dict) -> list[str]:
    marks = []
    if "config" in columns_of(connection, "channels"):
        marks.append("channels.config")
    if "logs" in tables and "request_id" in columns_of(connection, "logs"):
        marks.append("logs.request_id")
    if "lark_id" in users:
        marks.append("users.lark_id")
    return marks


def _new_api_marks(connection: BaseDatabaseWrapper, tables: set[str], users: dict) -> list[str]:
    marks = [f"table {t}" for t in sorted(NEW_API_ONLY_TABLES & tables)]
    if "model_limits" in columns_of(connection, "tokens"):
        marks.append("tokens.model_limits")
    if "aff_count" in users:
        marks.append("users.aff_count")
    return marks
