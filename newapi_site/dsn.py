"""Turn New API's database settings (SQL_DSN / SQLITE_PATH) into a Django DATABASES entry.

Accepted SQL_DSN forms, as New API accepts them:
- ``postgres://user:pass@host:5432/db?sslmode=disable`` and ``postgresql://…``
- MySQL in go-sql-driver form ``user:pass@tcp(host:3306)/db?parseTime=true``
- ``local`` or empty: SQLite at SQLITE_PATH.
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from .env import ConfigError

# Django serves each /api and admin request from a thread of its own (ASGI): a connection kept past
# its request would be left behind by every one of them, so it is closed when the request ends.
# A long-lived thread (the relay's database thread) keeps its one connection.
PER_REQUEST = 0

_GO_MYSQL = re.compile(
    r"^(?P<user>[^:@/]*)(?::(?P<password>[^@]*))?@(?:(?P<proto>\w+)\((?P<addr>[^)]*)\))?/(?P<db>[^?]*)(?:\?(?P<query>.*))?$"
)


def sqlite_database(path: str, base_dir: Path) -> dict:
    # New API's default carries go-sqlite options after '?': drop them.
    clean = path.split("?", 1)[0] or "one-api.db"
    file = Path(clean)
    if not file.is_absolute():
        file = base_dir / file
    file.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(file),
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL;",
        },
        # A file, not :memory:, so a gateway started by the tests sees the test database.
        "TEST": {"NAME": str(file.with_name(file.stem + "-test.sqlite3"))},
    }


def database_from_dsn(dsn: str, sqlite_path: str, base_dir: Path) -> dict:
    dsn = dsn.strip()
    if not dsn or dsn.startswith("local"):
        return sqlite_database(sqlite_path, base_dir)
    if dsn.startswith(("postgres://", "postgresql://")):
        url = urlparse(dsn)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        options = {}
        if "sslmode" in query:
            options["sslmode"] = query["sslmode"]
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(url.path.lstrip("/")) or "postgres",
            "USER": unquote(url.username or ""),
            "PASSWORD": unquote(url.password or ""),
            "HOST": url.hostname or "",
            "PORT": str(url.port or ""),
            "OPTIONS": options,
            "CONN_MAX_AGE": PER_REQUEST,
            "CONN_HEALTH_CHECKS": True,
        }
    if dsn.startswith("mysql://"):
        url = urlparse(dsn)
        user, password, addr, db = (
            url.username or "",
            url.password or "",
            url.netloc.rsplit("@", 1)[-1],
            url.path.lstrip("/"),
        )
    else:
        match = _GO_MYSQL.match(dsn)
        if not match:
            raise ConfigError(
                f"SQL_DSN={dsn!r} is neither postgres://…, user:pass@tcp(host:port)/db nor local"
            )
        user, password, addr, db = (
            match["user"],
            match["password"] or "",
            match["addr"] or "127.0.0.1:3306",
            match["db"],
        )
    host, _, port = addr.partition(":")
    return {
        "ENGINE": "django.db.backends.mysql",
        "NAME": unquote(db),
        "USER": unquote(user),
        "PASSWORD": unquote(password),
        "HOST": host or "127.0.0.1",
        "PORT": port or "3306",
        "OPTIONS": {"charset": "utf8mb4"},
        "CONN_MAX_AGE": PER_REQUEST,
    }
