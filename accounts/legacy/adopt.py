"""adopt_legacy_database: make an existing One API / New API database ours, then let `migrate` run.

Steps (each a service in this package):
 1. detect_schema; refuse a foreign database before changing anything;
 2. print the backup note, record the source (option LegacyImportSource) so an interrupted run resumes
    with the same decision;
 3. widen_columns (BIGINT quotas, varchar(64) groups, TEXT model_mapping) and add_missing_schema
    (tables, columns, indexes of our 0001 migrations);
 4. One API only, once, in one transaction with its marker (option LegacyOneApiImportedAt):
    convert_one_api_rows, remap_channel_types, sync_abilities;
 5. the setups row New API writes once a root exists;
 6. record our initial migrations as applied (the tables are there now), plus later migrations of
    ours that only add columns the database already has.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.core.management.base import CommandError
from django.db import models, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.operations import AddField
from django.db.migrations.recorder import MigrationRecorder

from .channel_types import remap_channel_types
from .columns import columns_of, table_names
from .convert import convert_one_api_rows, sync_abilities
from .detect import OUR_APPS, SOURCE_OPTION, Detected, detect_schema
from .schema import add_missing_schema, widen_columns

Say = Callable[[str], None]
CONVERTED_OPTION = "LegacyOneApiImportedAt"
SETUP_VERSION = "newapi-django"
ROLE_ROOT = 100

BACKUP_NOTE = """\
*** Existing {kind} database found ({reason}).
*** It will be converted IN PLACE: columns are added and widened{one_api}.
*** Nothing is dropped, but there is no way back to the exact previous state: make a backup first
*** (sqlite: copy the file; mysql: mysqldump; postgres: pg_dump) if you have not done so yet."""


class AdoptionRefused(CommandError):
    pass


def adopt_legacy_database(
    connection: BaseDatabaseWrapper, say: Say, force_source: str | None = None
) -> Detected:
    detected = detect_schema(connection, force_source)
    if detected.kind == "foreign":
        raise AdoptionRefused(
            f"Refusing to migrate database {connection.settings_dict['NAME']!r}: it is neither empty, "
            f"this gateway's, One API's nor New API's ({detected.reason}). Nothing was changed. "
            "Point SQL_DSN / SQLITE_PATH at an empty database or at a One API / New API database."
        )
    if not detected.is_legacy:
        return detected
    say(
        BACKUP_NOTE.format(
            kind="One API" if detected.kind == "one-api" else "New API",
            reason=detected.reason,
            one_api=(
                ", One API rows converted and channel types renumbered" if detected.kind == "one-api" else ""
            ),
        )
    )
    _set_option(connection, SOURCE_OPTION, detected.kind)
    adopted = adopted_models(connection)
    widen_columns(connection, adopted, say)
    add_missing_schema(connection, adopted, say)
    if detected.kind == "one-api" and not _get_option(connection, CONVERTED_OPTION):
        with transaction.atomic(using=connection.alias):
            convert_one_api_rows(connection, say)
            remap_channel_types(connection, say)
            sync_abilities(connection, say)
            _set_option(connection, CONVERTED_OPTION, str(int(time.time())))
    ensure_setup_row(connection, say)
    record_adopted_migrations(connection, say)
    say(f"*** {'One API' if detected.kind == 'one-api' else 'New API'} database adopted.")
    return detected


def _initial_nodes(loader: MigrationLoader) -> list[tuple[str, str]]:
    return [node for app in OUR_APPS for node in loader.graph.root_nodes(app)]


def adopted_models(connection: BaseDatabaseWrapper) -> list[type[models.Model]]:
    """Our apps' models as the initial migrations define them (not as models.py is today)."""
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    state = loader.project_state(_initial_nodes(loader), at_end=True)
    return [m for m in state.apps.get_models(include_auto_created=True) if m._meta.app_label in OUR_APPS]


def _get_option(connection: BaseDatabaseWrapper, key: str) -> str | None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {qn('value')} FROM options WHERE {qn('key')} = %s", [key])
        row = cursor.fetchone()
    return row[0] if row else None


def _set_option(connection: BaseDatabaseWrapper, key: str, value: str) -> None:
    qn = connection.ops.quote_name
    with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
        if _get_option(connection, key) is None:
            cursor.execute(f"INSERT INTO options ({qn('key')}, {qn('value')}) VALUES (%s, %s)", [key, value])
        else:
            cursor.execute(f"UPDATE options SET {qn('value')} = %s WHERE {qn('key')} = %s", [value, key])


def ensure_setup_row(connection: BaseDatabaseWrapper, say: Say) -> None:
    # New API's CheckSetup: a database with a root user counts as set up.
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM setups")
        if cursor.fetchone()[0]:
            return
        cursor.execute("SELECT COUNT(*) FROM users WHERE role >= %s", [ROLE_ROOT])
        if not cursor.fetchone()[0]:
            return
        cursor.execute(
            "INSERT INTO setups (version, initialized_at) VALUES (%s, %s)", [SETUP_VERSION, int(time.time())]
        )
    say("  setups: recorded (a root user exists)")


def record_adopted_migrations(connection: BaseDatabaseWrapper, say: Say) -> None:
    recorder = MigrationRecorder(connection)
    recorder.ensure_schema()
    applied = recorder.applied_migrations()
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    for app, name in _initial_nodes(loader):
        if (app, name) not in applied:
            recorder.record_applied(app, name)
            say(f"  migration {app}.{name}: marked applied (tables adopted)")
    _fake_satisfied_followups(connection, recorder, say)


def _fake_satisfied_followups(connection: BaseDatabaseWrapper, recorder: MigrationRecorder, say: Say) -> None:
    """Later migrations of ours that only add columns New API already has are marked applied too
    (fake-initial semantics for AddField), so adopting a New API database never hits 'duplicate column'."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    blocked: set[str] = set()
    for migration, backwards in plan:
        app = migration.app_label
        if backwards or app not in OUR_APPS or app in blocked:
            continue
        applied = recorder.applied_migrations()
        deps_done = all(dep in applied for dep in migration.dependencies)
        if deps_done and _columns_already_there(connection, executor.loader, migration):
            recorder.record_applied(app, migration.name)
            say(f"  migration {app}.{migration.name}: marked applied (columns already present)")
        else:
            blocked.add(app)


def _columns_already_there(connection: BaseDatabaseWrapper, loader: MigrationLoader, migration) -> bool:
    if not migration.operations or not all(isinstance(op, AddField) for op in migration.operations):
        return False
    state = loader.project_state((migration.app_label, migration.name), at_end=False)
    tables = table_names(connection)
    for op in migration.operations:
        table = state.apps.get_model(migration.app_label, op.model_name)._meta.db_table
        column = op.field.db_column or op.name
        if table not in tables or column not in columns_of(connection, table):
            return False
    return True
