"""Settings come from New API's environment names; a malformed value stops start-up loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from newapi_site.dsn import database_from_dsn
from newapi_site.env import ConfigError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "dsn, engine, expected",
    [
        ("postgres://u:p%40ss@db.example:5433/newapi?sslmode=disable", "postgresql", ("newapi", "u", "p@ss", "db.example", "5433")),
        ("postgresql://u@h/x", "postgresql", ("x", "u", "", "h", "")),
        ("root:secret@tcp(127.0.0.1:3306)/oneapi?parseTime=true", "mysql", ("oneapi", "root", "secret", "127.0.0.1", "3306")),
        ("root:@tcp(mysql)/oneapi", "mysql", ("oneapi", "root", "", "mysql", "3306")),
    ],
)
def test_sql_dsn_forms(dsn, engine, expected, tmp_path):
    db = database_from_dsn(dsn, "", tmp_path)
    assert db["ENGINE"].endswith(engine)
    assert (db["NAME"], db["USER"], db["PASSWORD"], db["HOST"], db["PORT"]) == expected


def test_empty_dsn_is_sqlite_at_sqlite_path(tmp_path):
    db = database_from_dsn("", "one-api.db?_busy_timeout=5000", tmp_path)
    assert db["ENGINE"].endswith("sqlite3") and db["NAME"] == str(tmp_path / "one-api.db")


def test_garbage_dsn_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="SQL_DSN"):
        database_from_dsn("not a dsn", "", tmp_path)


@pytest.mark.parametrize("name, value", [("PORT", "abc"), ("FORCE_STREAM_OPTION", "maybe"), ("STREAMING_TIMEOUT", "1m")])
def test_malformed_environment_stops_startup(name, value, tmp_path):
    env = {**os.environ, name: value, "DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode != 0
    assert name in proc.stderr


def test_session_secret_example_value_is_refused(tmp_path):
    env = {**os.environ, "SESSION_SECRET": "random_string", "DATA_DIR": str(tmp_path)}
    proc = subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert proc.returncode != 0 and "SESSION_SECRET" in proc.stderr
