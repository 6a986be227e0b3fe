"""Loaded with `-p tests._env` before Django reads its settings: choose the database under test.

NEWAPI_TEST_DB=postgres (default) | sqlite | mysql. PostgreSQL and MySQL runs use the real Redis
on 127.0.0.1:6379 (database 9); the SQLite run uses the embedded defaults (no Redis).
"""

from __future__ import annotations

import os
import tempfile

ENGINE = os.environ.setdefault("NEWAPI_TEST_DB", "postgres")
_data = tempfile.mkdtemp(prefix=f"newapi-test-{ENGINE}-")
os.environ["DATA_DIR"] = _data
os.environ.setdefault("SESSION_SECRET", "test-session-secret")
os.environ.setdefault("BATCH_UPDATE_INTERVAL", "0.2")
os.environ["REDIS_KEY_PREFIX"] = f"newapi-test-{os.getpid()}"
os.environ.setdefault("GLOBAL_API_RATE_LIMIT_ENABLE", "false")

if ENGINE == "postgres":
    # A per-run name, so parallel runs on one server don't drop each other's test_<name> database.
    os.environ.setdefault("SQL_DSN", f"postgres://postgres@127.0.0.1:5432/newapi{os.getpid()}")
    os.environ.setdefault("REDIS_CONN_STRING", "redis://127.0.0.1:6379/9")
elif ENGINE == "mysql":
    os.environ.setdefault("SQL_DSN", f"root:@tcp(127.0.0.1:3306)/newapi{os.getpid()}?parseTime=true")
    os.environ.setdefault("REDIS_CONN_STRING", "redis://127.0.0.1:6379/9")
elif ENGINE == "sqlite":
    os.environ["SQL_DSN"] = ""
    os.environ["SQLITE_PATH"] = os.path.join(_data, "one-api.db")
    os.environ.pop("REDIS_CONN_STRING", None)
    # Worker tests read task results; the embedded filesystem broker has no result store of its own.
    os.makedirs(os.path.join(_data, "celery-results"), exist_ok=True)
    os.environ["CELERY_RESULT_BACKEND"] = "file://" + os.path.join(_data, "celery-results")
else:
    raise SystemExit(f"NEWAPI_TEST_DB={ENGINE!r}: use postgres, sqlite or mysql")
os.environ.setdefault("MAX_REQUEST_BODY_MB", "2")
