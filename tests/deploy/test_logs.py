"""Log retention (LogRetentionDays, prune_logs, the daily beat entry) and LOG_SQL_DSN: logs in a
second PostgreSQL database."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import httpx
import psycopg
import pytest
from django.conf import settings
from django.db import connection

from billing.models import LOG_CONSUME, Log
from newapi_site import redis
from newapi_site.options import options
from tests.conftest import ROOT, gateway_env, live, make_channel, make_token, make_user, start_gateway

DAY = 86_400


def manage(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env or gateway_env(),
                          capture_output=True, text=True, timeout=120)


def add_logs(user_id: int, ages_days: list[float]) -> None:
    now = int(time.time())
    Log.objects.bulk_create([
        Log(user_id=user_id, created_at=now - int(age * DAY), type=LOG_CONSUME, content=f"age {age}", quota=1)
        for age in ages_days
    ])


@live
def test_prune_logs_deletes_rows_past_the_retention_option_in_batches(as_root) -> None:
    user = make_user("retained")
    add_logs(user.pk, [0, 0.5, 6.9, 7.5, 10, 30, 30, 400])
    assert as_root.put("/api/option/", {"key": "LogRetentionDays", "value": "nope"})["success"] is False
    assert as_root.put("/api/option/", {"key": "LogRetentionDays", "value": "-3"})["success"] is False

    out = manage("prune_logs")  # the default, 0: keep everything
    assert out.returncode == 0 and "nothing deleted" in out.stdout
    assert Log.objects.filter(user_id=user.pk).count() == 8

    assert as_root.put("/api/option/", {"key": "LogRetentionDays", "value": "7"})["success"] is True
    out = manage("prune_logs", "--batch-size", "2")  # several batches
    assert out.returncode == 0, out.stderr
    assert "deleted 5 log rows older than 7 days" in out.stdout
    left = sorted(Log.objects.filter(user_id=user.pk).values_list("content", flat=True))
    assert left == ["age 0", "age 0.5", "age 6.9"]

    out = manage("prune_logs", "--days", "1")  # an explicit number overrides the option
    assert "deleted 1 log rows" in out.stdout
    assert manage("prune_logs", "--days", "-1").returncode != 0


@live
def test_the_daily_beat_task_prunes_with_the_option(as_root) -> None:
    from newapi_site.celery import app

    entry = app.conf.beat_schedule["prune-logs"]
    assert entry["task"] == "billing.prune_logs" and entry["schedule"] == DAY
    user = make_user("beat-retained")
    add_logs(user.pk, [0, 3, 5])
    assert as_root.put("/api/option/", {"key": "LogRetentionDays", "value": 2})["success"] is True
    options.invalidate()
    result = app.tasks["billing.prune_logs"].apply()
    assert result.get() == 2
    assert Log.objects.filter(user_id=user.pk).count() == 1


@pytest.fixture
def logs_database():
    """A second PostgreSQL database on the test server, dropped afterwards."""
    if settings.DATABASE_ENGINE != "postgresql":
        pytest.skip("LOG_SQL_DSN is tested on PostgreSQL")
    db = connection.settings_dict
    name = f"newapi_logs_{uuid.uuid4().hex[:10]}"
    admin_dsn = f"postgresql://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/postgres"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    dsn = f"postgres://{db['USER']}@{db['HOST']}:{db['PORT'] or 5432}/{name}"
    yield dsn
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn.replace("postgres://", "postgresql://", 1)) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()
    return {r[0] for r in rows}


def log_rows(dsn: str, token_id: int) -> list[tuple]:
    with psycopg.connect(dsn.replace("postgres://", "postgresql://", 1)) as conn:
        return conn.execute("SELECT model_name, quota FROM logs WHERE token_id = %s", [token_id]).fetchall()


@live
def test_log_sql_dsn_puts_consume_logs_in_their_own_database(logs_database, fake_upstream) -> None:
    env = gateway_env({"LOG_SQL_DSN": logs_database})
    out = manage("migrate", "--noinput", "--database", "logs", env=env)
    assert out.returncode == 0, out.stderr
    assert {"logs", "django_migrations"} <= tables(logs_database)
    assert not {"users", "tokens", "channels", "options"} & tables(logs_database)  # only the logs live there

    make_channel(fake_upstream.base_url, key="logsdb-key")
    user = make_user("logsdb-user")
    token = make_token(user)
    # Its own Redis key prefix: the session's gateway (no LOG_SQL_DSN) must not drain this node's billing queue.
    prefix = f"{settings.REDIS_KEY_PREFIX}-logsdb"
    gw = start_gateway({"LOG_SQL_DSN": logs_database, "REDIS_KEY_PREFIX": prefix})
    try:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        resp = httpx.post(f"{gw.v1}/chat/completions", json=body, headers={"Authorization": f"Bearer sk-{token.key}"},
                          timeout=10)
        assert resp.status_code == 200
        deadline = time.time() + 10
        while not log_rows(logs_database, token.pk) and time.time() < deadline:
            time.sleep(0.1)
        [(model, quota)] = log_rows(logs_database, token.pk)
        assert model == "gpt-4o-mini" and quota > 0
        assert not Log.objects.filter(token_id=token.pk).exists()  # nothing in the main database's table
        user.refresh_from_db()
        assert user.used_quota == quota  # the balance is still charged on the main database

        health = httpx.get(f"{gw.url}/healthz", timeout=5).json()
        assert health["logs_database"] == "ok"
    finally:
        gw.stop()
        if settings.REDIS_CONN_STRING:
            client = redis.sync_redis()
            stale = list(client.scan_iter(match=f"{prefix}:*", count=1000))
            if stale:
                client.delete(*stale)

    # The log pages read there too, and prune_logs deletes there.
    with psycopg.connect(logs_database.replace("postgres://", "postgresql://", 1)) as conn:
        conn.execute("UPDATE logs SET created_at = created_at - %s WHERE token_id = %s", [10 * DAY, token.pk])
    out = manage("prune_logs", "--days", "5", env=env)
    assert "deleted 1 log rows" in out.stdout
    assert log_rows(logs_database, token.pk) == []
