"""Which upstream statuses the text relay retries on another channel (New API's rules), and the
weighted random choice inside a priority tier, checked by its distribution."""

from __future__ import annotations

import asyncio
import collections

import httpx
import pytest

from billing.models import Log
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.relay]
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def one_retry():
    update_option("RetryTimes", "1")
    propagated()
    yield
    update_option("RetryTimes", "0")
    propagated()


@pytest.mark.parametrize(
    ("status", "retried"),
    [
        (400, False),
        (408, False),
        (504, False),
        (524, False),
        (401, True),
        (403, True),
        (404, True),
        (429, True),
        (500, True),
        (502, True),
    ],
)
def test_which_statuses_are_retried(gateway, fake_upstream, one_retry, status, retried):
    failing = make_channel(
        fake_upstream.base_url, key=f"status-{status}", priority=10, name=f"first-{status}"
    )
    backup = make_channel(fake_upstream.base_url, key=f"backup-{status}", priority=0, name=f"backup-{status}")
    user = make_user(f"retry{status}")
    token = make_token(user)
    before = len(fake_upstream.requests_for(f"backup-{status}"))
    r = httpx.post(
        f"{gateway.v1}/chat/completions",
        json=BODY,
        headers={"Authorization": f"Bearer sk-{token.key}"},
        timeout=30,
    )
    tried_backup = len(fake_upstream.requests_for(f"backup-{status}")) - before
    settle()
    if retried:
        assert r.status_code == 200 and tried_backup == 1
        log = Log.objects.get(user_id=user.pk, type=2)
        assert log.channel_id == backup.pk and log.quota > 0
    else:
        assert r.status_code == status and tried_backup == 0
        assert r.json()["error"]["message"]
        assert not Log.objects.filter(user_id=user.pk, type=2).exists()  # no charge
    assert failing.pk != backup.pk


def test_weighted_choice_within_a_tier(gateway, fake_upstream):
    weights = {"w0": 0, "w10": 10, "w30": 30}  # chosen in proportion to weight + 10: 1/7, 2/7, 4/7
    for key, weight in weights.items():
        make_channel(fake_upstream.base_url, key=key, weight=weight, priority=5)
    make_channel(fake_upstream.base_url, key="w-lower", weight=100, priority=1)  # a lower tier: never chosen
    token = make_token(make_user("weighed", quota=100_000_000))
    before = {k: len(fake_upstream.requests_for(k)) for k in [*weights, "w-lower"]}
    n = 700

    async def run() -> list[int]:
        limit = asyncio.Semaphore(16)
        async with httpx.AsyncClient(timeout=30) as client:

            async def one() -> int:
                async with limit:
                    r = await client.post(
                        f"{gateway.v1}/chat/completions",
                        json=BODY,
                        headers={"Authorization": f"Bearer sk-{token.key}"},
                    )
                    return r.status_code

            return await asyncio.gather(*(one() for _ in range(n)))

    assert collections.Counter(asyncio.run(run())) == {200: n}
    counts = {k: len(fake_upstream.requests_for(k)) - before[k] for k in before}
    assert counts["w-lower"] == 0 and sum(counts[k] for k in weights) == n
    expected = {k: n * (w + 10) / 70 for k, w in weights.items()}
    chi2 = sum((counts[k] - expected[k]) ** 2 / expected[k] for k in weights)
    assert chi2 < 18.4, (counts, expected)  # df 2, p = 0.0001: a wrong distribution fails, chance does not


def test_a_400_is_retried_only_from_an_anthropic_channel(gateway, fake_upstream, one_retry):
    from tests.fakes.anthropic_upstream import FakeAnthropic

    claude = FakeAnthropic().start()
    model = "claude-3-5-sonnet-20241022"
    make_channel(claude.base_url, key="status-400", type=14, models=model, priority=10, name="claude-400")
    make_channel(fake_upstream.base_url, key="after-claude", models=model, priority=0, name="backup-claude")
    token = make_token(make_user("retry-claude"))
    before = len(fake_upstream.requests_for("after-claude"))
    r = httpx.post(
        f"{gateway.v1}/chat/completions",
        json={**BODY, "model": model},
        headers={"Authorization": f"Bearer sk-{token.key}"},
        timeout=30,
    )
    assert r.status_code == 200 and len(fake_upstream.requests_for("after-claude")) == before + 1
