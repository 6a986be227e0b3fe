"""/v1/messages reserves (prompt + max_tokens) × ratios like chat does, not the flat
PreConsumedQuota: a token that covers the flat amount but not max_tokens is refused."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.anthropic_upstream import FakeAnthropic

pytestmark = [live, pytest.mark.relay]
MODEL = "claude-3-5-sonnet-20241022"  # ratio 1.5: the flat estimate is 500 × 1.5 = 750


def test_messages_reserve_uses_max_tokens(gateway):
    fake = FakeAnthropic().start()
    make_channel(fake.base_url, key="reserve", type=14, models=MODEL, name="claude-reserve")
    user = make_user("msgres", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=1000)

    def ask(max_tokens: int) -> httpx.Response:
        body = {"model": MODEL, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]}
        return httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": f"sk-{token.key}", "anthropic-version": "2023-06-01"}, json=body, timeout=20)

    r = ask(4096)  # (prompt + 4096) × 1.5 > 1000
    assert r.status_code == 403 and r.json()["type"] == "error" and "token quota is not enough" in r.json()["error"]["message"]
    assert fake.requests == []
    r = ask(100)  # (prompt + 100) × 1.5 < 1000
    assert r.status_code == 200 and r.json()["content"][0]["text"] == "Hello from Claude!"
    settle()
    token.refresh_from_db()
    assert token.remain_quota == 1000 - 53
