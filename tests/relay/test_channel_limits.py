"""Per-channel rate limits (`setting.rpm_limit`, `setting.tpm_limit`) in channel choice, through the
real gateway: a channel at its limit is passed over while another can serve, a 429 when none can,
and one count shared by every gateway worker (in Redis, or in the embedded ledger's owner)."""

from __future__ import annotations

import json

import openai
import pytest

from newapi_site.options import update_option
from newapi_site.roles import ROLE_ADMIN
from relay.channels import multi_key
from tests.conftest import live, make_channel, make_token, make_user, propagated, start_gateway

pytestmark = [live, pytest.mark.relay]


def limited(fake_upstream, key: str, priority: int, **limits: int):
    return make_channel(fake_upstream.base_url, key=key, priority=priority, setting=json.dumps(limits))


def client(base_url: str, token) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=f"sk-{token.key}", max_retries=0)


def persona(name: str):
    token = make_token(make_user(name))
    propagated()
    return token


def chat(c: openai.OpenAI, stream: bool = False) -> None:
    messages = [{"role": "user", "content": "hi"}]
    if stream:
        assert "".join(
            ch.choices[0].delta.content or ""
            for ch in c.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True)
            if ch.choices
        )
    else:
        assert c.chat.completions.create(model="gpt-4o-mini", messages=messages).choices[0].message.content


def served(fake_upstream, *keys: str) -> list[int]:
    return [len(fake_upstream.requests_for(k)) for k in keys]


def test_channel_at_its_rpm_is_passed_over(gateway, fake_upstream):
    limited(fake_upstream, "rpm-first", 10, rpm_limit=2)
    make_channel(fake_upstream.base_url, key="rpm-second", priority=0)
    c = client(gateway.v1, persona("rpm-a"))
    before = served(fake_upstream, "rpm-first", "rpm-second")
    chat(c)
    chat(c, stream=True)  # streams count like any request
    assert served(fake_upstream, "rpm-first", "rpm-second") == [before[0] + 2, before[1]]
    chat(c)
    chat(c, stream=True)
    assert served(fake_upstream, "rpm-first", "rpm-second") == [before[0] + 2, before[1] + 2]


def test_every_channel_at_its_limit_is_a_429(gateway, fake_upstream):
    limited(fake_upstream, "rpm-only", 0, rpm_limit=1)
    c = client(gateway.v1, persona("rpm-b"))
    chat(c)
    with pytest.raises(openai.RateLimitError) as exc:
        chat(c)
    error = exc.value.response.json()["error"]
    assert error["code"] == "channel_rate_limited" and error["type"] == "new_api_error", error
    assert len(fake_upstream.requests_for("rpm-only")) >= 1


def test_channel_at_its_tpm_is_passed_over(gateway, fake_upstream):
    # the fake answers with 11 + 7 tokens: one request puts the channel past 10 tokens a minute
    limited(fake_upstream, "tpm-first", 10, tpm_limit=10)
    make_channel(fake_upstream.base_url, key="tpm-second", priority=0)
    c = client(gateway.v1, persona("tpm-a"))
    before = served(fake_upstream, "tpm-first", "tpm-second")
    chat(c)
    chat(c)
    chat(c, stream=True)
    assert served(fake_upstream, "tpm-first", "tpm-second") == [before[0] + 1, before[1] + 2]


def test_a_limit_of_zero_is_no_limit(gateway, fake_upstream):
    limited(fake_upstream, "rpm-zero", 10, rpm_limit=0, tpm_limit=0)
    make_channel(fake_upstream.base_url, key="rpm-zero-other", priority=0)
    c = client(gateway.v1, persona("rpm-zero"))
    before = served(fake_upstream, "rpm-zero", "rpm-zero-other")
    for _ in range(4):
        chat(c)
    assert served(fake_upstream, "rpm-zero", "rpm-zero-other") == [before[0] + 4, before[1]]


def test_the_count_is_shared_by_two_gateway_workers(gateway, fake_upstream):
    limited(fake_upstream, "rpm-shared", 10, rpm_limit=3)
    make_channel(fake_upstream.base_url, key="rpm-shared-other", priority=0)
    token = persona("rpm-shared")
    second = start_gateway()
    try:
        one, two = client(gateway.v1, token), client(second.v1, token)
        before = served(fake_upstream, "rpm-shared", "rpm-shared-other")
        chat(one)
        chat(two)
        chat(one, stream=True)
        assert served(fake_upstream, "rpm-shared", "rpm-shared-other") == [before[0] + 3, before[1]]
        chat(two)  # this worker admitted one: the other two it never saw are counted all the same
        chat(one)
        assert served(fake_upstream, "rpm-shared", "rpm-shared-other") == [before[0] + 3, before[1] + 2]
    finally:
        second.stop()


@pytest.fixture
def one_retry():
    update_option("RetryTimes", "1")
    propagated()
    yield
    update_option("RetryTimes", "0")
    propagated()


def test_a_retry_passes_over_a_channel_at_its_limit(gateway, fake_upstream, one_retry):
    make_channel(fake_upstream.base_url, key="status-500", priority=10)  # always fails: every request retries
    limited(fake_upstream, "retry-limited", 5, rpm_limit=1)
    make_channel(fake_upstream.base_url, key="retry-last", priority=0)
    c = client(gateway.v1, persona("rpm-retry"))
    before = served(fake_upstream, "retry-limited", "retry-last")
    chat(c)
    assert served(fake_upstream, "retry-limited", "retry-last") == [before[0] + 1, before[1]]
    chat(c)
    assert served(fake_upstream, "retry-limited", "retry-last") == [before[0] + 1, before[1] + 1]


def test_a_key_pinned_to_a_channel_at_its_limit_gets_a_429(gateway, fake_upstream):
    channel = limited(fake_upstream, "rpm-pinned", 0, rpm_limit=1)
    admin = make_user("rpm-admin", role=ROLE_ADMIN)
    token = make_token(admin)
    propagated()
    c = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}-{channel.pk}", max_retries=0)
    chat(c)
    with pytest.raises(openai.RateLimitError) as exc:
        chat(c)
    assert exc.value.response.json()["error"]["code"] == "channel_rate_limited"


def test_a_key_retry_passes_over_its_channel_at_its_limit(gateway, fake_upstream, auto_disable):
    # both keys are refused; after the first one is disabled the channel is at its limit, so the
    # retry goes to another channel rather than to the channel's second key
    keys = ["status-401-lim-a", "status-401-lim-b"]
    make_channel(
        fake_upstream.base_url,
        key="\n".join(keys),
        priority=10,
        setting=json.dumps({"rpm_limit": 1}),
        channel_info=multi_key.new_info(len(keys), "polling"),
    )
    make_channel(fake_upstream.base_url, key="lim-after", priority=0)
    c = client(gateway.v1, persona("rpm-keys"))
    chat(c)
    assert served(fake_upstream, *keys, "lim-after") in ([1, 0, 1], [0, 1, 1])
