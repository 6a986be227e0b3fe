"""widen_columns and add_missing_schema: bring a legacy schema up to our models, GORM-AutoMigrate style.

Only additive or widening changes: nothing is dropped, narrowed or retyped to something smaller, and
One-API-only columns stay. `models` are the historical models of the adopted migrations, so the
schema ends exactly where our 0001 migrations would have left it.

SQLite needs no widening (integers are 64-bit, varchar lengths are not enforced), and we never use
Django's SQLite add_field there: it rebuilds the table from the model and would drop the
One-API-only columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import cast

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper

from .columns import Column, columns_of, index_columns, index_names, is_int32, table_names

Say = Callable[[str], None]
# Columns New API (or One API) made TEXT-like on purpose; a varchar there is widened to TEXT.
TEXT_COLUMNS = {("channels", "model_mapping")}


def _concrete_fields(model: type[models.Model]) -> list[models.Field]:
    return [
        f
        for f in model._meta.local_concrete_fields
        if f.column and not isinstance(f, models.CompositePrimaryKey)
    ]


def widen_columns(connection: BaseDatabaseWrapper, model_list: Iterable[type[models.Model]], say: Say) -> int:
    vendor = connection.vendor
    if vendor == "sqlite":
        return 0
    existing = table_names(connection)
    changed = 0
    for model in model_list:
        table = model._meta.db_table
        if table not in existing:
            continue
        cols = columns_of(connection, table)
        for field in _concrete_fields(model):
            col = cols.get(cast(str, field.column))  # _concrete_fields keeps fields with a column
            if col is None or field.primary_key:
                continue
            new_type = _wider_type(field, col, table, vendor)
            if new_type:
                say(f"  widen {table}.{col.name}: {col.column_type} -> {new_type}")
                _alter_type(connection, table, col, new_type)
                changed += 1
    return changed


def _wider_type(field: models.Field, col: Column, table: str, vendor: str) -> str | None:
    if isinstance(field, models.BigIntegerField) and is_int32(col, vendor):
        return "bigint"
    if (
        isinstance(field, models.CharField)
        and col.data_type in ("varchar", "char")
        and field.max_length
        and col.length is not None
        and col.length < field.max_length
    ):
        return f"varchar({field.max_length})"
    if (table, col.name) in TEXT_COLUMNS and col.data_type in ("varchar", "char"):
        return "text"
    if isinstance(field, models.FloatField) and vendor == "postgresql" and col.data_type == "numeric":
        # GORM writes float64 as `decimal` on PostgreSQL; Django's FloatField wants a float back.
        return "double precision"
    return None


def _alter_type(connection: BaseDatabaseWrapper, table: str, col: Column, new_type: str) -> None:
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                f"ALTER TABLE {qn(table)} ALTER COLUMN {qn(col.name)} TYPE {new_type} USING {qn(col.name)}::{new_type}"
            )
            return
        # MySQL's MODIFY restates the whole column: keep nullability and default.
        parts = [f"ALTER TABLE {qn(table)} MODIFY {qn(col.name)} {new_type}"]
        if not col.nullable:
            parts.append("NOT NULL")
        default = _mysql_default_sql(connection, col)
        if default is not None and new_type != "text":
            parts.append(f"DEFAULT {default}")
        cursor.execute(" ".join(parts))


def _mysql_default_sql(connection: BaseDatabaseWrapper, col: Column) -> str | None:
    if col.default is None or col.default.upper() == "NULL":
        return None
    if connection.mysql_is_mariadb:  # type: ignore[attr-defined]  # the MySQL backend's own flag
        return col.default  # MariaDB reports the literal already quoted: 'default', 0
    if col.data_type in ("varchar", "char", "text", "longtext", "mediumtext"):
        return "'" + col.default.replace("'", "''") + "'"
    return col.default


def add_missing_schema(
    connection: BaseDatabaseWrapper, model_list: Iterable[type[models.Model]], say: Say
) -> int:
    """Create missing tables; add missing columns and single-column/declared indexes."""
    changed = 0
    existing = table_names(connection)
    for model in model_list:
        table = model._meta.db_table
        if table not in existing:
            say(f"  create table {table}")
            with connection.schema_editor() as editor:
                editor.create_model(model)
            changed += 1
            continue
        changed += _add_missing_columns(connection, model, say)
        changed += _add_missing_indexes(connection, model, say)
    return changed


def _add_missing_columns(connection: BaseDatabaseWrapper, model: type[models.Model], say: Say) -> int:
    table = model._meta.db_table
    cols = columns_of(connection, table)
    added = 0
    for field in _concrete_fields(model):
        if field.column in cols:
            continue
        say(f"  add column {table}.{field.column}")
        with connection.schema_editor() as editor:
            if connection.vendor == "sqlite":
                _sqlite_add_column(editor, model, field)
            else:
                editor.add_field(model, field)
        added += 1
    return added


def _sqlite_add_column(editor, model: type[models.Model], field: models.Field) -> None:
    # Plain ALTER TABLE ADD COLUMN, default inlined (SQLite takes no parameters in DDL);
    # indexes are added by _add_missing_indexes.
    definition, _ = editor.column_sql(model, field)
    definition = definition.replace(" UNIQUE", "")
    default = editor.effective_default(field)
    if default is not None:
        definition += " DEFAULT " + str(editor.quote_value(default))
    qn = editor.quote_name
    editor.execute(f"ALTER TABLE {qn(model._meta.db_table)} ADD COLUMN {qn(field.column)} {definition}")


def _add_missing_indexes(connection: BaseDatabaseWrapper, model: type[models.Model], say: Say) -> int:
    table = model._meta.db_table
    present = index_columns(connection, table)
    cols = columns_of(connection, table)
    qn = connection.ops.quote_name
    added = 0
    for field in _concrete_fields(model):
        if field.primary_key or not (field.db_index or field.unique):  # type: ignore[attr-defined]  # missing from the stubs
            continue
        column = cast(str, field.column)  # _concrete_fields keeps fields with a column
        if field.unique:
            if any(unique and columns == [column] for columns, unique in present):
                continue
        elif any(columns[:1] == [column] for columns, _ in present):
            continue
        if connection.vendor == "mysql" and cols[column].data_type.endswith("text"):
            say(f"  skip index on {table}.{column}: a TEXT column on MySQL cannot be indexed")
            continue
        name = _free_name(connection, table, ("uni_" if field.unique else "idx_") + f"{table}_{column}")
        unique_sql = "UNIQUE " if field.unique else ""
        say(f"  add {unique_sql.lower()}index {name}")
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE {unique_sql}INDEX {qn(name)} ON {qn(table)} ({qn(column)})")
        added += 1
    for index in model._meta.indexes:
        wanted = [cast(models.Field, model._meta.get_field(f.lstrip("-"))).column for f in index.fields]
        if any(columns == wanted for columns, _ in present):
            continue
        say(f"  add index {index.name}")
        with connection.schema_editor() as editor:
            editor.add_index(model, index)
        added += 1
    return added


def _free_name(connection: BaseDatabaseWrapper, table: str, name: str) -> str:
    taken = index_names(connection, table)
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate
