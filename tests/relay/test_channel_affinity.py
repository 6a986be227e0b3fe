"""Channel affinity for prompt caches (ChannelAffinityEnabled, off by default), through the real
gateway: the same prompt_cache_key, or the same token and model, keeps landing on the channel that
served it while that channel is healthy; every gateway worker knows it (Redis, or the embedded
ledger's owner)."""

from __future__ import annotations

import json

import openai
import pytest

from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import update_option
from relay.models import Channel
from tests.conftest import live, make_channel, make_token, make_user, propagated, start_gateway

pytestmark = [live, pytest.mark.relay]
KEYS = ("aff-a", "aff-b")
ROUNDS = 12  # two equal channels: all on one by chance has odds 2 / 2**12


@pytest.fixture
def affinity():
    update_option("ChannelAffinityEnabled", "true")
    update_option("ChannelAffinitySeconds", "300")
    propagated()
    yield
    update_option("ChannelAffinityEnabled", DEFAULT_OPTIONS["ChannelAffinityEnabled"])
    update_option("ChannelAffinitySeconds", DEFAULT_OPTIONS["ChannelAffinitySeconds"])
    propagated()


def two_channels(fake_upstream, **setting: int) -> dict[str, Channel]:
    return {
        k: make_channel(fake_upstream.base_url, key=k, setting=json.dumps(setting) if setting else "")
        for k in KEYS
    }


def persona(name: str):
    token = make_token(make_user(name))
    propagated()
    return token


def client(base_url: str, token) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=f"sk-{token.key}", max_retries=0)


def chat(c: openai.OpenAI, cache_key: str | None = None, stream: bool = False) -> None:
    extra = {"prompt_cache_key": cache_key} if cache_key else {}
    messages = [{"role": "user", "content": "hi"}]
    if stream:
        list(c.chat.completions.create(model="gpt-4o-mini", messages=messages, stream=True, extra_body=extra))
    else:
        c.chat.completions.create(model="gpt-4o-mini", messages=messages, extra_body=extra)


def counts(fake_upstream) -> list[int]:
    return [len(fake_upstream.requests_for(k)) for k in KEYS]


def spread(fake_upstream, send) -> list[int]:  # type: ignore[no-untyped-def]
    before = counts(fake_upstream)
    for i in range(ROUNDS):
        send(i)
    return [after - b for after, b in zip(counts(fake_upstream), before, strict=True)]


def test_off_by_default_requests_spread(gateway, fake_upstream):
    assert DEFAULT_OPTIONS["ChannelAffinityEnabled"] == "false"
    two_channels(fake_upstream)
    c = client(gateway.v1, persona("aff-off"))
    got = spread(fake_upstream, lambda i: chat(c, "same-prefix"))
    assert sorted(got) != [0, ROUNDS], got


def test_same_prompt_cache_key_sticks_to_one_channel(gateway, fake_upstream, affinity):
    two_channels(fake_upstream)
    c = client(gateway.v1, persona("aff-key"))
    got = spread(fake_upstream, lambda i: chat(c, "shared-system-prompt", stream=i % 2 == 1))
    assert sorted(got) == [0, ROUNDS], got
    # different keys are different caches: they spread over both channels
    got = spread(fake_upstream, lambda i: chat(c, f"prompt-{i}"))
    assert sorted(got) != [0, ROUNDS], got


def test_the_options_are_in_the_registry_and_editable(as_root):
    listed = {o["key"]: o["value"] for o in as_root.get("/api/option/")["data"]}
    assert (listed["ChannelAffinityEnabled"], listed["ChannelAffinitySeconds"]) == ("false", "300")
    try:
        assert (
            as_root.put("/api/option/", {"key": "ChannelAffinitySeconds", "value": "60"})["success"] is True
        )
    finally:
        update_option("ChannelAffinitySeconds", DEFAULT_OPTIONS["ChannelAffinitySeconds"])


def test_same_token_and_model_sticks_without_a_key(gateway, fake_upstream, affinity):
    two_channels(fake_upstream)
    c = client(gateway.v1, persona("aff-token"))
    got = spread(fake_upstream, lambda i: chat(c))
    assert sorted(got) == [0, ROUNDS], got


def test_a_disabled_channel_loses_its_requests(gateway, fake_upstream, affinity):
    channels = two_channels(fake_upstream)
    c = client(gateway.v1, persona("aff-disabled"))
    before = counts(fake_upstream)
    chat(c, "k")
    first = next(k for k, n, b in zip(KEYS, counts(fake_upstream), before, strict=True) if n > b)
    other = KEYS[1 - KEYS.index(first)]
    channel = channels[first]
    channel.status = 2
    channel.save()
    propagated()
    got = spread(fake_upstream, lambda i: chat(c, "k"))
    assert got[KEYS.index(other)] == ROUNDS, got


def test_a_channel_at_its_limit_loses_its_requests(gateway, fake_upstream, affinity):
    two_channels(fake_upstream, rpm_limit=2)
    c = client(gateway.v1, persona("aff-limit"))
    before = counts(fake_upstream)
    for _ in range(4):
        chat(c, "busy")
    got = [a - b for a, b in zip(counts(fake_upstream), before, strict=True)]
    assert got == [2, 2], got  # two on the remembered channel, then it is full: the other serves


def test_two_gateway_workers_share_the_memory(gateway, fake_upstream, affinity):
    two_channels(fake_upstream)
    token = persona("aff-shared")
    second = start_gateway()
    try:
        one, two = client(gateway.v1, token), client(second.v1, token)
        got = spread(fake_upstream, lambda i: chat(one if i % 2 else two, "across-workers"))
        assert sorted(got) == [0, ROUNDS], got
    finally:
        second.stop()
