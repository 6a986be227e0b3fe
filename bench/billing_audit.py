"""After a bench run: was every answered request billed, once, and do the books agree?

Read from the database (PostgreSQL, or the embedded SQLite file) after the gateway has shut down (which must flush its batched log rows and
counters), so this also checks that nothing queued is lost on shutdown. A fast gateway that
skipped billing would show up here as fewer log rows than answered requests.
"""

from __future__ import annotations

import json
from pathlib import Path

INITIAL_QUOTA = 10**13  # what bench/run.py gives the bench user


def answered_requests(results_json: Path, held_streams: int) -> int:
    """Requests the harness saw answered 200 by the gateway (a lower bound: warm-ups are not counted)."""
    doc = json.loads(results_json.read_text())
    ours = next(t for t in doc["targets"] if t["name"] == "ours")
    total = held_streams
    for phase in ("c1", "load"):
        total += (ours.get(phase) or {}).get("ok_requests", 0)
    total += (ours.get("stream") or {}).get("ok", 0)
    return total


def _connect(dsn: str):
    """PostgreSQL by DSN, or the embedded set-up's SQLite file as sqlite:<path>."""
    if dsn.startswith("sqlite:"):
        import sqlite3

        return sqlite3.connect(dsn.removeprefix("sqlite:")), "?"
    import psycopg

    return psycopg.connect(dsn), "%s"


def audit(dsn: str, answered: int) -> dict:
    conn, mark = _connect(dsn)
    with conn:
        uid, quota, used, requests = conn.execute(
            "SELECT id, quota, used_quota, request_count FROM users WHERE username = 'bencher'").fetchone()
        logs, logged_quota = conn.execute(
            f"SELECT count(*), coalesce(sum(quota), 0) FROM logs WHERE type = 2 AND user_id = {mark}", (uid,)).fetchone()
        token_used = conn.execute(
            f"SELECT coalesce(sum(used_quota), 0) FROM tokens WHERE user_id = {mark}", (uid,)).fetchone()[0]
    conn.close()
    report = {
        "answered_at_least": answered,
        "consume_logs": logs,
        "user_request_count": requests,
        "logged_quota": int(logged_quota),
        "user_used_quota": used,
        "token_used_quota": int(token_used),
        "user_quota_left": quota,
    }
    problems = []
    if logs < answered:
        problems.append(f"{answered - logs} answered requests have no log row")
    if logs != requests:
        problems.append(f"log rows {logs} != user request_count {requests}")
    if not (logged_quota == used == token_used):
        problems.append(f"quota in logs {logged_quota}, user used {used}, token used {token_used} disagree")
    if quota + used != INITIAL_QUOTA:
        problems.append(f"quota left {quota} + used {used} != {INITIAL_QUOTA}")
    report["ok"] = not problems
    report["problems"] = problems
    return report
