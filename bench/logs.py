"""`make bench-logs`: log searches at scale on PostgreSQL.

Fills a scratch database (newapi_bench_logs) with N log rows (5 million by default; `--rows`),
then times, through the real /api views (Django's test client, in this process):
  - a user's first page of logs      GET /api/log/self/?p=1&page_size=10
  - an admin search by model + token GET /api/log/?model_name=...&token_name=...
  - the stats endpoint               GET /api/log/self/stat?type=2&start_timestamp=...  (a user, last 7 days)
                                     GET /api/log/stat?type=2&start_timestamp=...&username=... (admin)
  - the same user's console log page GET /log (signed in: rows, totals and token names)
Each is run once to warm up, then `--repeat` times; the median and the worst are printed in ms.
The database is kept (a second run with the same --rows reuses it); `--refill` starts over.
Before timing, `VACUUM (ANALYZE) logs` brings the table to the state autovacuum keeps a live one in
(a PostgreSQL run with autovacuum off never marks pages all-visible, and index-only counts and sums
then read the heap row by row).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "newapi_bench_logs"
USERS = 1000  # the heavy user (id 1 after ours) writes 1% of the rows
MODELS = [
    "gpt-4o-mini",
    "gpt-4o",
    "claude-3-5-sonnet",
    "gemini-1.5-pro",
    "deepseek-chat",
    "o1-mini",
    "qwen-max",
    "glm-4",
]
TOKENS = 5000
SPAN_DAYS = 180
# Stored as the table's comment; a database filled with another shape of rows is filled again.
SHAPE = "bench-logs: heavy user 1%, errors 1 in 47"


def ensure_database(refill: bool) -> None:
    import psycopg

    with psycopg.connect(
        PG.replace("postgres://", "postgresql://", 1) + "/postgres", autocommit=True
    ) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone()
        if exists and refill:
            conn.execute(f'DROP DATABASE "{DB_NAME}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def setup_django() -> None:
    os.environ["SQL_DSN"] = f"{PG}/{DB_NAME}"
    os.environ.pop("REDIS_CONN_STRING", None)
    os.environ.pop("LOG_SQL_DSN", None)
    os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bench-logs-"))
    os.environ.setdefault("SESSION_SECRET", "bench-logs")
    os.environ["GLOBAL_API_RATE_LIMIT_ENABLE"] = "false"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", "--noinput", verbosity=0)


def fill(rows: int) -> None:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute("SELECT count(*), obj_description('logs'::regclass, 'pg_class') FROM logs")
        have, shape = cur.fetchone()
        if have == rows and shape == SHAPE:
            print(f"logs: {rows} rows already there")
            cur.execute("VACUUM (ANALYZE) logs")
            return
        cur.execute("TRUNCATE logs")
        now = int(time.time())
        step = SPAN_DAYS * 86_400 / rows
        chunk = 500_000
        started = time.time()
        models = "ARRAY[" + ",".join(f"'{m}'" for m in MODELS) + "]"
        for lo in range(1, rows + 1, chunk):
            hi = min(lo + chunk - 1, rows)
            # 1% of the rows belong to the heavy user (user_id 1), the rest spread over USERS users;
            # 1 in 47 is an error log (47 is prime to 100, so the heavy user has both kinds).
            cur.execute(
                f"""
                INSERT INTO logs (user_id, created_at, type, content, username, token_name, model_name, quota,
                                  prompt_tokens, completion_tokens, use_time, is_stream, channel_id,
                                  channel_name, token_id, "group", other)
                SELECT u, {now} - ((%s - i) * {step})::bigint, CASE WHEN i %% 47 = 0 THEN 5 ELSE 2 END,
                       '模型倍率 1.00，分组倍率 1.00', 'user' || u, 'token-' || (i %% {TOKENS}),
                       ({models})[1 + (i %% {len(MODELS)})], 100 + i %% 900, 50 + i %% 500, 20 + i %% 300,
                       1 + i %% 9, i %% 3 = 0, 1 + i %% 20, 'channel', 1 + i %% {TOKENS}, 'default', '{{}}'
                FROM (SELECT i, CASE WHEN i %% 100 = 0 THEN 1 ELSE 2 + i %% {USERS} END AS u
                      FROM generate_series(%s, %s) AS i) AS s
                """,
                [rows, lo, hi],
            )
            print(f"logs: {hi}/{rows} rows ({time.time() - started:.0f} s)", flush=True)
        cur.execute(f"COMMENT ON TABLE logs IS '{SHAPE}'")
        cur.execute("VACUUM (ANALYZE) logs")


def personas():
    import uuid

    from accounts.models import Token, User
    from newapi_site.roles import ROLE_COMMON, ROLE_ROOT

    def persona(name: str, role: int, pk: int) -> tuple[str, int]:
        user, _ = User.objects.update_or_create(
            pk=pk, defaults={"username": name, "display_name": name, "role": role}
        )
        user.access_token = uuid.uuid4().hex
        user.save()
        return user.access_token, user.pk

    # The heavy user's tokens: the names its log rows carry (token-0, token-100, …).
    Token.objects.filter(user_id=1).delete()
    Token.objects.bulk_create(Token(user_id=1, name=f"token-{n}") for n in range(0, TOKENS, 100))
    return persona("user1", ROLE_COMMON, 1), persona("benchroot", ROLE_ROOT, 999_999)


def signed_in_client(user_id: int):
    """A test client holding a console session of the user, as /login starts one."""
    from importlib import import_module

    from django.conf import settings
    from django.test import Client

    from accounts import sessions
    from accounts.models import User

    store = import_module(settings.SESSION_ENGINE).SessionStore()
    sessions.start(store, User.objects.get(pk=user_id))
    store.save()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = store.session_key
    return client


def time_get(client, path: str, auth: tuple[str, int] | None, repeat: int) -> tuple[float, float, int]:
    """`auth` None: a console page with the client's session."""
    headers = {"HTTP_AUTHORIZATION": auth[0], "HTTP_NEW_API_USER": str(auth[1])} if auth else {}
    resp = client.get(path, **headers)  # warm-up
    assert resp.status_code == 200, resp.content[:300]
    assert auth is None or resp.json().get("success"), resp.content[:300]
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        resp = client.get(path, **headers)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), max(times), len(resp.content)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--refill", action="store_true")
    args = parser.parse_args()

    ensure_database(args.refill)
    setup_django()
    fill(args.rows)
    from django.test import Client

    user, root = personas()
    client = Client()
    page_client = signed_in_client(user[1])
    week = int(time.time()) - 7 * 86_400
    cases = [
        ("user's first page", "/api/log/self/?p=1&page_size=10", user),
        (
            "admin: model + token name",
            f"/api/log/?p=1&page_size=10&model_name={MODELS[3]}&token_name=token-{TOKENS - 5}",
            root,
        ),
        ("user stats, last 7 days", f"/api/log/self/stat?type=2&start_timestamp={week}", user),
        (
            "admin stats, user last 7 days",
            f"/api/log/stat?type=2&start_timestamp={week}&username=user1",
            root,
        ),
    ]
    print(f"\n{args.rows} log rows; median and worst of {args.repeat} (ms)")
    for name, path, auth in cases:
        median, worst, size = time_get(client, path, auth, args.repeat)
        print(f"  {name:32s} {median:8.1f} {worst:8.1f}   ({size} bytes)")
    median, worst, size = time_get(page_client, "/log", None, args.repeat)
    print(f"  {'user console page /log':32s} {median:8.1f} {worst:8.1f}   ({size} bytes)")


if __name__ == "__main__":
    main()
