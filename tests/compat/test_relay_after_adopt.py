"""After adopting a One API database, its existing keys relay through the gateway with their limits
and are billed on the existing balances (issue #5). The gateway is a real Daphne process on the
scratch database; the upstream is the fake OpenAI server."""

from __future__ import annotations

import sqlite3
import time

import httpx

from tests.conftest import start_gateway

from .scratch_db import execute
from .test_adopt import MANIFEST, _migrate_ok, scratch_factory  # noqa: F401  (fixture)

TOKENS = {t["name"]: t["key"] for t in MANIFEST["tokens"]}
# gpt-4o-mini in the fixture's options: ModelRatio 0.075, CompletionRatio 4, group default 1;
# the fake upstream reports 11 prompt + 7 completion tokens: (11 + 7 * 4) * 0.075 = 2.925 -> 3.
CHAT_QUOTA = 3


def _chat(gateway, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return httpx.post(
        f"{gateway.v1}/chat/completions",
        headers={"Authorization": f"Bearer sk-{key}"},
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        timeout=30,
    )


def _row(db: str, sql: str, args: tuple = ()) -> tuple:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, args).fetchone()


def _wait_for_log(db: str, count: int) -> None:
    deadline = time.time() + 10
    while time.time() < deadline:
        if _row(db, "SELECT COUNT(*) FROM logs")[0] >= count:
            time.sleep(0.5)  # the counters are written in the same batch
            return
        time.sleep(0.1)
    raise AssertionError("no consume log written")


def test_one_api_keys_relay_with_their_limits_and_billing(scratch_factory, tmp_path, fake_upstream):  # noqa: F811
    scratch = scratch_factory("sqlite", "one-api")
    _migrate_ok(scratch, tmp_path)
    # openai-main (priority 10) now points at the fake upstream
    execute(scratch, f"UPDATE channels SET base_url = '{fake_upstream.base_url}' WHERE id = 1")
    db = scratch.name
    before_user = _row(db, "SELECT quota, used_quota, request_count FROM users WHERE id = 1")
    before_token = _row(db, "SELECT remain_quota, used_quota FROM tokens WHERE id = 1")
    before_channel = _row(db, "SELECT used_quota FROM channels WHERE id = 1")[0]
    logs = _row(db, "SELECT COUNT(*) FROM logs")[0]

    gateway = start_gateway({**scratch.env, "REDIS_CONN_STRING": "", "DATA_DIR": str(tmp_path / "gw")})
    try:
        ok = _chat(gateway, TOKENS["root-ops"])
        assert ok.status_code == 200, ok.text
        assert ok.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream!"
        _wait_for_log(db, logs + 1)
        assert _row(db, "SELECT quota, used_quota, request_count FROM users WHERE id = 1") == (
            before_user[0] - CHAT_QUOTA,
            before_user[1] + CHAT_QUOTA,
            before_user[2] + 1,
        )
        assert before_user[0] == 500_000_000_000_000
        assert _row(db, "SELECT remain_quota, used_quota FROM tokens WHERE id = 1") == (
            before_token[0] - CHAT_QUOTA,
            before_token[1] + CHAT_QUOTA,
        )
        assert _row(db, "SELECT used_quota FROM channels WHERE id = 1")[0] == before_channel + CHAT_QUOTA
        log = _row(
            db, "SELECT type, user_id, token_id, model_name, quota, channel_id FROM logs ORDER BY id DESC"
        )
        assert log == (2, 1, 1, "gpt-4o-mini", CHAT_QUOTA, 1)

        # the limits One API stored survive the conversion
        assert _chat(gateway, TOKENS["alice-unlimited"]).status_code == 200
        assert _chat(gateway, TOKENS["alice-expired"]).status_code == 401
        assert _chat(gateway, TOKENS["admin-disabled"]).status_code == 401
        assert _chat(gateway, TOKENS["bob-exhausted"]).status_code in (401, 403)
        assert _chat(gateway, TOKENS["alice-office-ip"]).status_code in (
            401,
            403,
        )  # 127.0.0.1 not in the CIDRs
        assert _chat(gateway, TOKENS["bob-gpt4o-only"], model="claude-3-5-haiku-20241022").status_code in (
            401,
            403,
        )
        assert _chat(gateway, TOKENS["bob-gpt4o-only"]).status_code == 200
    finally:
        gateway.stop()
