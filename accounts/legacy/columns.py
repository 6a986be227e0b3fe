"""Backend-specific column introspection (Django's FieldInfo does not say 'varchar(32)' portably)."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.backends.base.base import BaseDatabaseWrapper


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # lower case: integer, bigint, varchar, text, numeric, tinyint, ...
    length: int | None  # character length for varchar/char
    nullable: bool
    default: str | None  # as the server reports it (an SQL literal/expression)
    column_type: str  # full type as written, e.g. "varchar(32)", "tinyint(1)", "bigint unsigned"


def table_names(connection: BaseDatabaseWrapper) -> set[str]:
    with connection.cursor() as cursor:
        return set(connection.introspection.table_names(cursor))


def columns_of(connection: BaseDatabaseWrapper, table: str) -> dict[str, Column]:
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "sqlite":
            cursor.execute(f"PRAGMA table_info({connection.ops.quote_name(table)})")
            out = {}
            for _cid, name, decl, notnull, default, _pk in cursor.fetchall():
                decl = (decl or "").lower()
                base = decl.split("(", 1)[0].strip()
                length = (
                    int(decl.split("(", 1)[1].rstrip(")"))
                    if "(" in decl and base in ("varchar", "char")
                    else None
                )
                out[name] = Column(name, base, length, not notnull, default, decl)
            return out
        if vendor == "postgresql":
            cursor.execute(
                "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default, udt_name "
                "FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = %s",
                [table],
            )
            return {
                r[0]: Column(
                    r[0], _pg_type(r[1]), r[2], r[3] == "YES", r[4], f"{r[5]}({r[2]})" if r[2] else r[5]
                )
                for r in cursor.fetchall()
            }
        cursor.execute(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, column_default, column_type "
            "FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = %s",
            [table],
        )
        return {
            r[0]: Column(r[0], r[1].lower(), r[2], r[3] == "YES", r[4], r[5].lower())
            for r in cursor.fetchall()
        }


def _pg_type(data_type: str) -> str:
    return {
        "character varying": "varchar",
        "character": "char",
        "timestamp with time zone": "timestamptz",
    }.get(data_type, data_type)


def is_int32(column: Column, vendor: str) -> bool:
    """True for integer columns narrower than 64 bits (SQLite integers are always 64-bit)."""
    if vendor == "postgresql":
        return column.data_type in ("integer", "smallint")
    if vendor == "mysql":
        if column.column_type.startswith("tinyint(1)"):
            return False  # a boolean
        return column.data_type in ("int", "mediumint", "smallint", "tinyint")
    return False


def index_columns(connection: BaseDatabaseWrapper, table: str) -> list[tuple[list[str], bool]]:
    """Every index/unique/primary-key constraint of `table` as (columns, unique)."""
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    # Django's SQLite parser keeps GORM's backticks on table-constraint columns: strip quotes.
    return [
        ([col.strip('`"[]') for col in c["columns"]], bool(c["unique"] or c["primary_key"]))
        for c in constraints.values()
        if c["columns"] and (c["index"] or c["unique"] or c["primary_key"])
    ]


def index_names(connection: BaseDatabaseWrapper, table: str) -> set[str]:
    with connection.cursor() as cursor:
        return {name.strip('`"') for name in connection.introspection.get_constraints(cursor, table)}
