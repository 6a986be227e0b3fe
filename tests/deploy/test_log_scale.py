"""What keeps a heavy user's log pages fast at millions of rows: the stats index that carries the
summed columns, PostgreSQL's tighter autovacuum on `logs`, and the /log page's totals and token-name
suggestions read without a DISTINCT over the user's log rows."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

import pytest
from django.db import connection
from django.test import Client

from billing.models import LOG_CONSUME, Log
from tests.conftest import make_token, make_user

pytestmark = pytest.mark.django_db

LOG_ERROR = 5  # New API's error log type
USAGE_COLUMNS = ["user_id", "type", "created_at", "quota", "prompt_tokens", "completion_tokens"]


def log_indexes() -> dict[str, list[str]]:
    with connection.cursor() as cur:
        found = connection.introspection.get_constraints(cur, "logs")
    return {name: info["columns"] for name, info in found.items() if info["index"]}


def test_the_stats_index_carries_the_summed_columns() -> None:
    indexes = log_indexes()
    assert indexes["idx_logs_user_type_usage"] == USAGE_COLUMNS
    assert indexes["idx_logs_user_id_id"] == ["user_id", "id"]
    assert "idx_logs_user_type_created" not in indexes  # its prefix of the new one, not kept twice


def test_postgresql_vacuums_the_logs_table_after_two_percent_new_rows() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL storage parameter")
    with connection.cursor() as cur:
        cur.execute("SELECT reloptions FROM pg_class WHERE relname = 'logs'")
        (options,) = cur.fetchone()
    assert "autovacuum_vacuum_insert_scale_factor=0.02" in (options or [])


def test_postgresql_sums_a_users_usage_from_the_index_alone() -> None:
    if connection.vendor != "postgresql":
        pytest.skip("a PostgreSQL plan")
    with connection.cursor() as cur:
        cur.execute("SET LOCAL enable_seqscan = off")
        cur.execute("SET LOCAL enable_bitmapscan = off")
        cur.execute(
            "EXPLAIN SELECT SUM(quota), SUM(prompt_tokens), SUM(completion_tokens) FROM logs "
            "WHERE user_id = 1 AND type = 2 AND created_at >= 0"
        )
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "Index Only Scan using idx_logs_user_type_usage" in plan, plan


def signed_in(username: str) -> Client:
    client = Client()
    client.get("/login")
    answer = client.post("/login", {"username": username, "password": f"{username}-password"})
    assert answer.status_code == 302, answer.content[:500]
    return client


def test_the_log_page_totals_and_suggests_the_users_token_names() -> None:
    user = make_user("heavy-logs")
    other = make_user("other-logs")
    make_token(user, name="alpha")
    make_token(user, name="beta", deleted_at=datetime.now(UTC))  # deleted: its logs stay, so does its name
    make_token(user, name="alpha")  # one suggestion per name
    make_token(other, name="not-mine")
    now = int(time.time())
    Log.objects.bulk_create(
        [
            Log(
                user_id=user.pk,
                type=LOG_CONSUME,
                created_at=now - i,
                token_name="alpha",
                quota=10 + i,
                prompt_tokens=5,
                completion_tokens=3,
            )
            for i in range(30)
        ]
        + [Log(user_id=user.pk, type=LOG_ERROR, created_at=now, quota=999, prompt_tokens=999)]
        + [Log(user_id=other.pk, type=LOG_CONSUME, created_at=now, quota=777, token_name="not-mine")]
    )
    html = signed_in("heavy-logs").get("/log?page_size=10").content.decode()

    datalist = re.search(r'<datalist id="lg-token-names">(.*?)</datalist>', html, re.S)
    assert datalist is not None
    assert re.findall(r'<option value="([^"]*)">', datalist.group(1)) == ["alpha", "beta"]
    quota = sum(10 + i for i in range(30))
    assert f'data-total-quota="{quota}"' in html  # consume rows only, this user's only
    assert "Tokens" in html and f"<strong>{30 * 8}</strong>" in html
    assert html.count('class="log-row"') == 10
    assert "Page 1 of 4 (31 rows)" in html  # the exact total
