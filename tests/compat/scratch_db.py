"""Scratch databases holding a copy of a fixture, on SQLite, PostgreSQL or MariaDB.

Not the pytest-django test database: each scratch database is `compat_<random>`, created here and
dropped afterwards. The One API fixture is loaded from its SQL script; the New API fixture only
exists as SQLite, so for PostgreSQL/MySQL its tables are recreated in GORM's shape (types per the
fixture README: integer->bigint, numeric->boolean, real->decimal/double, text->varchar(191)/longtext
on MySQL when indexed or defaulted, datetime->timestamptz/datetime(3)) and its rows copied.
"""

from __future__ import annotations

import secrets
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from django.utils.dateparse import parse_datetime

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"  # copied from the shared fixture set, README included
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
MY = {"host": "127.0.0.1", "port": 3306, "user": "root", "password": ""}


@dataclass
class Scratch:
    backend: str  # sqlite | postgres | mysql
    name: str  # database name or SQLite file path
    env: dict[str, str] = field(default_factory=dict)

    def drop(self) -> None:
        if self.backend == "postgres":
            _pg_admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        elif self.backend == "mysql":
            _mysql(None, f"DROP DATABASE IF EXISTS `{self.name}`")


def make_scratch(backend: str, source: str | None, tmp: Path) -> Scratch:
    """An empty scratch database (source None) or one holding fixture `source` (one-api | new-api)."""
    if backend == "sqlite":
        path = tmp / "db.sqlite3"
        if source:
            shutil.copy(FIXTURES / f"{source}.sqlite", path)
        return Scratch("sqlite", str(path), {"SQL_DSN": "", "SQLITE_PATH": str(path)})
    name = "compat_" + secrets.token_hex(6)
    if backend == "postgres":
        _pg_admin(f'CREATE DATABASE "{name}"')
        scratch = Scratch("postgres", name, {"SQL_DSN": f"postgres://postgres@127.0.0.1:5432/{name}"})
        if source == "one-api":
            subprocess.run(
                [
                    "psql",
                    "-h",
                    PG["host"],
                    "-U",
                    PG["user"],
                    "-q",
                    "-v",
                    "ON_ERROR_STOP=1",
                    "-d",
                    name,
                    "-f",
                    str(FIXTURES / "one-api.postgres.sql"),
                ],
                check=True,
                capture_output=True,
            )
        elif source == "new-api":
            _copy_sqlite(FIXTURES / "new-api.sqlite", "postgres", name)
        return scratch
    _mysql(None, f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    scratch = Scratch("mysql", name, {"SQL_DSN": f"root:@tcp(127.0.0.1:3306)/{name}?parseTime=true"})
    if source == "one-api":
        with open(FIXTURES / "one-api.mysql.sql", "rb") as script:
            subprocess.run(
                ["mysql", "-h", MY["host"], "-u", MY["user"], name],
                stdin=script,
                check=True,
                capture_output=True,
            )
    elif source == "new-api":
        _copy_sqlite(FIXTURES / "new-api.sqlite", "mysql", name)
    return scratch


def _pg_admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(dbname="postgres", autocommit=True, **PG) as conn:
        conn.execute(sql)


def _mysql(db: str | None, *statements: str) -> None:
    import pymysql

    conn = pymysql.connect(database=db, charset="utf8mb4", autocommit=True, **MY)
    try:
        with conn.cursor() as cur:
            for sql in statements:
                cur.execute(sql)
    finally:
        conn.close()


def execute(scratch: Scratch, sql: str) -> None:
    """Run one statement against a scratch database (test set-up only)."""
    if scratch.backend == "postgres":
        import psycopg

        with psycopg.connect(dbname=scratch.name, autocommit=True, **PG) as conn:
            conn.execute(sql)
    elif scratch.backend == "mysql":
        _mysql(scratch.name, sql)
    else:
        with sqlite3.connect(scratch.name) as conn:
            conn.execute(sql)


# --- New API's SQLite fixture rendered on PostgreSQL / MySQL --------------------------------------


def _copy_sqlite(path: Path, target: str, name: str) -> None:
    src = sqlite3.connect(path)
    ddl: list[str] = []
    inserts: list[tuple[str, list[tuple]]] = []
    tables = [r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type='table' ORDER BY rowid")]
    for table in tables:
        table_ddl, index_ddl, kinds = _translate_table(src, table, target)
        ddl.append(table_ddl)
        ddl.extend(index_ddl)
        cols = [c[1] for c in src.execute(f"PRAGMA table_info(`{table}`)")]
        rows = [
            tuple(_value(v, kinds[c], target) for c, v in zip(cols, row))
            for row in src.execute(f"SELECT * FROM `{table}`")
        ]
        q = (lambda c: f'"{c}"') if target == "postgres" else (lambda c: f"`{c}`")
        ph = ", ".join(["%s"] * len(cols))
        inserts.append((f"INSERT INTO {q(table)} ({', '.join(q(c) for c in cols)}) VALUES ({ph})", rows))
    src.close()
    if target == "postgres":
        import psycopg

        with psycopg.connect(dbname=name, **PG) as conn, conn.cursor() as cur:
            for sql in ddl:
                cur.execute(sql)
            for sql, rows in inserts:
                if rows:
                    cur.executemany(sql, rows)
            for table in tables:
                if any(
                    c[1] == "id" and c[5]
                    for c in sqlite3.connect(path).execute(f"PRAGMA table_info(`{table}`)")
                ):
                    cur.execute(
                        f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                        f'COALESCE((SELECT max(id) FROM "{table}"), 1))'
                    )
        return
    import pymysql

    conn = pymysql.connect(database=name, charset="utf8mb4", **MY)
    try:
        with conn.cursor() as cur:
            for sql in ddl:
                cur.execute(sql)
            for sql, rows in inserts:
                if rows:
                    cur.executemany(sql, rows)
        conn.commit()
    finally:
        conn.close()


def _translate_table(
    src: sqlite3.Connection, table: str, target: str
) -> tuple[str, list[str], dict[str, str]]:
    info = list(src.execute(f"PRAGMA table_info(`{table}`)"))
    pk = [c[1] for c in sorted(info, key=lambda c: c[5]) if c[5]]
    indexes = []
    indexed: set[str] = set(pk)
    for _seq, iname, unique, origin, _partial in src.execute(f"PRAGMA index_list(`{table}`)"):
        cols = [r[2] for r in src.execute(f"PRAGMA index_info(`{iname}`)")]
        indexed.update(cols)
        indexes.append((iname, bool(unique), origin, cols))
    q = (lambda c: f'"{c}"') if target == "postgres" else (lambda c: f"`{c}`")
    defs, kinds = [], {}
    for _cid, col, decl, notnull, default, _pk in info:
        decl = decl.lower()
        kinds[col] = decl
        sql_type = _type(table, col, decl, target, col in indexed or default is not None, pk == ["id"])
        line = f"{q(col)} {sql_type}"
        if notnull:
            line += " NOT NULL"
        if default is not None:
            line += " DEFAULT " + default.replace('"', "'")
        defs.append(line)
    defs.append(f"PRIMARY KEY ({', '.join(q(c) for c in pk)})")
    index_ddl = []
    for iname, unique, origin, cols in indexes:
        if origin == "u":
            defs.append(
                f"CONSTRAINT {q('uni_' + table + '_' + cols[0])} UNIQUE ({', '.join(q(c) for c in cols)})"
            )
        elif origin == "c":
            index_ddl.append(
                f"CREATE {'UNIQUE ' if unique else ''}INDEX {q(iname)} ON {q(table)} ({', '.join(q(c) for c in cols)})"
            )
    return f"CREATE TABLE {q(table)} ({', '.join(defs)})", index_ddl, kinds


def _type(table: str, col: str, decl: str, target: str, indexed_or_default: bool, id_pk: bool) -> str:
    pg = target == "postgres"
    if decl == "integer":
        if col == "id" and id_pk:
            return "bigserial" if pg else "bigint AUTO_INCREMENT"
        if col == "weight" and not pg:
            return "bigint unsigned"
        return "bigint"
    if decl == "numeric":
        return "boolean"
    if decl == "real":
        return "decimal" if pg else "double"
    if decl == "datetime":
        return "timestamptz" if pg else "datetime(3)"
    if decl == "text":
        if pg:
            return "text"
        return "varchar(191)" if indexed_or_default else "longtext"
    return decl


def _value(value, decl: str, target: str):
    if value is None:
        return None
    if decl == "numeric":
        return bool(value)
    if decl == "datetime":
        parsed = parse_datetime(str(value))
        if target == "mysql":
            return parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    return value
