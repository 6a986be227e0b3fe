"""End to end through a real Daphne gateway with the official openai SDK, against a fake upstream."""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest

from accounts.models import Token, User
from billing.models import Log
from newapi_site.options import update_option
from relay.models import Channel
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.relay]

# gpt-4o-mini: model ratio 0.075, completion ratio 4 (hard-coded), group default 1.
# The fake upstream reports 11 prompt + 7 completion tokens: (11 + 7×4) × 0.075 = 2.925 → 3.
CHAT_QUOTA = 3


@pytest.fixture
def setup(gateway, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="ok-key")
    user = make_user("alice", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000, name="alice-key")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    return channel, user, token, client


def balances(user: User, token: Token, channel: Channel) -> tuple[int, int, int, int]:
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    channel.refresh_from_db()
    return user.quota, token.remain_quota, channel.used_quota, user.request_count


def test_chat_non_stream_bills_exactly(setup):
    channel, user, token, client = setup
    out = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from the fake upstream!"
    assert out.usage.prompt_tokens == 11
    quota, remain, used, count = balances(user, token, channel)
    assert (quota, remain, used, count) == (1_000_000 - CHAT_QUOTA, 500_000 - CHAT_QUOTA, CHAT_QUOTA, 1)
    assert user.used_quota == CHAT_QUOTA
    assert token.used_quota == CHAT_QUOTA
    log = Log.objects.get(user_id=user.pk)
    assert (log.type, log.model_name, log.quota, log.prompt_tokens, log.completion_tokens) == (2, "gpt-4o-mini", 3, 11, 7)
    assert (log.channel_id, log.token_name, log.token_id, log.is_stream) == (channel.pk, "alice-key", token.pk, False)
    other = json.loads(log.other)
    assert other["model_ratio"] == 0.075 and other["completion_ratio"] == 4 and other["admin_info"]["use_channel"] == [channel.pk]


def test_chat_stream_relays_chunks_and_hides_forced_usage(setup, fake_upstream):
    channel, user, token, client = setup
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from the fake upstream!"
    assert all(c.usage is None for c in chunks)  # we forced include_usage upstream, the client did not ask
    sent = fake_upstream.requests_for("ok-key")[-1].body
    assert sent["stream_options"] == {"include_usage": True}
    assert balances(user, token, channel)[:3] == (1_000_000 - CHAT_QUOTA, 500_000 - CHAT_QUOTA, CHAT_QUOTA)
    assert Log.objects.get(user_id=user.pk).is_stream is True


def test_chat_stream_with_usage_requested(setup):
    channel, user, token, client = setup
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    assert chunks[-1].usage.completion_tokens == 7


def test_stream_without_upstream_usage_is_counted_offline(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="nousage")
    user = make_user("carol", quota=1_000_000)
    token = make_token(user)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert log.completion_tokens == 6  # "Hello from the fake upstream!" in o200k_base
    assert log.prompt_tokens > 0 and log.quota > 0


def test_completions_embeddings_and_models(setup):
    channel, user, token, client = setup
    assert client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi").choices[0].text
    emb = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(emb.data) == 2
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4o-mini", "text-embedding-3-small"} <= ids
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    settle()
    # instruct: (11 + 7 × 4/3) × 0.75 = 15.25 → 15; embeddings: 11 × 0.01 = 0.11 → minimum 1
    assert sorted(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True)) == [1, 15]


def test_upstream_500_refunds_everything(gateway, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="status-500")
    user = make_user("dave", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    with pytest.raises(openai.InternalServerError) as exc:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], max_tokens=100)
    assert "fake upstream says 500" in str(exc.value)
    assert balances(user, token, channel)[:3] == (1_000_000, 500_000, 0)
    assert not Log.objects.filter(user_id=user.pk).exists()


def test_retry_moves_to_another_channel(gateway, fake_upstream):
    update_option("RetryTimes", "2")
    try:
        bad = make_channel(fake_upstream.base_url, key="status-503", priority=10, name="bad")
        good = make_channel(fake_upstream.base_url, key="good-key", priority=0, name="good")
        propagated()
        user = make_user("erin", quota=1_000_000)
        token = make_token(user)
        client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
        out = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
        assert out.choices[0].message.content
        settle()
        log = Log.objects.get(user_id=user.pk)
        assert log.channel_id == good.pk
        assert json.loads(log.other)["admin_info"]["use_channel"] == [bad.pk, good.pk]
    finally:
        update_option("RetryTimes", "0")
        propagated()


def test_error_bodies_change_nothing(setup, gateway):
    channel, user, token, client = setup
    bad = openai.OpenAI(base_url=gateway.v1, api_key="sk-" + "x" * 48, max_retries=0)
    with pytest.raises(openai.AuthenticationError) as exc:
        bad.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code == 401
    headers = {"Authorization": f"Bearer sk-{token.key}", "Content-Type": "application/json"}
    url = f"{gateway.v1}/chat/completions"
    r = httpx.post(url, content=b"{not json", headers=headers)
    assert r.status_code == 400 and set(r.json()["error"]) >= {"message", "type", "code"}
    r = httpx.post(url, json={"messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert r.status_code == 400 and "model" in r.json()["error"]["message"]
    r = httpx.post(url, content=b"x" * (3 * 1024 * 1024), headers=headers)
    assert r.status_code == 413
    r = httpx.post(url, json={"model": "gpt-unknown-x", "messages": [{"role": "user", "content": "x"}]}, headers=headers)
    assert r.status_code == 500 and r.json()["error"]["code"] == "model_price_error"
    update_option("ModelRatio", json.dumps({"orphan-model": 1, "gpt-4o-mini": 0.075}))
    propagated()
    try:
        r = httpx.post(url, json={"model": "orphan-model", "messages": [{"role": "user", "content": "x"}]}, headers=headers)
        assert r.status_code == 503
        assert "orphan-model" in r.json()["error"]["message"] and "default" in r.json()["error"]["message"]
    finally:
        from accounts.models import Option

        Option.objects.filter(key="ModelRatio").delete()
    assert balances(user, token, channel)[:3] == (1_000_000, 500_000, 0)


def test_concurrent_streams_on_one_token(setup, gateway):
    channel, user, token, _ = setup

    async def run() -> None:
        client = openai.AsyncOpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)

        async def one() -> str:
            stream = await client.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
            )
            return "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])

        results = await asyncio.gather(*(one() for _ in range(8)))
        assert all(r == "Hello from the fake upstream!" for r in results)

    asyncio.run(run())
    assert balances(user, token, channel)[:3] == (1_000_000 - 8 * CHAT_QUOTA, 500_000 - 8 * CHAT_QUOTA, 8 * CHAT_QUOTA)
    assert Log.objects.filter(user_id=user.pk).count() == 8


def test_client_disconnect_bills_what_was_received(gateway, fake_upstream):
    import socket
    import time

    make_channel(fake_upstream.base_url, key="slow")
    user = make_user("frank", quota=1_000_000)
    token = make_token(user)
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], "stream": True}).encode()
    finished_before = fake_upstream.finished_streams.count("slow")  # other tests stream with this key too
    sock = socket.create_connection(("127.0.0.1", gateway.port), timeout=20)
    sock.sendall(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-%s\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (token.key.encode(), len(body)) + body
    )
    received = b""
    while received.count(b" tok") < 3:
        received += sock.recv(65536)
    sock.close()  # the client goes away mid-stream
    for _ in range(60):
        settle()
        if Log.objects.filter(user_id=user.pk).exists():
            break
        time.sleep(0.1)
    log = Log.objects.get(user_id=user.pk)
    assert 3 <= log.completion_tokens < 30  # billed from what arrived, not the 40 that were coming
    assert log.quota > 0
    assert fake_upstream.finished_streams.count("slow") == finished_before  # the upstream read was cancelled
    user.refresh_from_db()
    assert user.quota == 1_000_000 - log.quota


def test_empty_stream_costs_nothing(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="empty")
    user = make_user("gina", quota=1_000_000)
    token = make_token(user)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True, max_tokens=50))
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000
    assert not Log.objects.filter(user_id=user.pk).exists()


def test_a_stalled_stream_ends_after_the_idle_timeout(fake_upstream):
    """STREAMING_TIMEOUT=1: the upstream sends two words then goes silent; the gateway ends the
    stream about a second later and bills the words that arrived."""
    import time

    from tests.conftest import start_gateway

    quick = start_gateway({"STREAMING_TIMEOUT": "1"})
    try:
        make_channel(fake_upstream.base_url, key="stall")
        user = make_user("ivan", quota=1_000_000)
        token = make_token(user)
        client = openai.OpenAI(base_url=quick.v1, api_key=f"sk-{token.key}", max_retries=0)
        started = time.monotonic()
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
        text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
        elapsed = time.monotonic() - started
    finally:
        quick.stop()
    assert text == "Hello from"
    assert 0.9 <= elapsed < 4
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert log.completion_tokens > 0 and log.quota > 0
    user.refresh_from_db()
    assert user.quota == 1_000_000 - log.quota


def test_an_upstream_that_drops_mid_stream_bills_what_arrived(gateway, fake_upstream):
    """The fake sends three words, then closes the connection without ending the chunked body:
    the client gets those words and a closed stream, and pays for them alone."""
    make_channel(fake_upstream.base_url, key="cut")
    user = make_user("judy", quota=1_000_000)
    token = make_token(user)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    stream = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Hello from the"
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert 0 < log.completion_tokens < 6 and log.quota > 0
    user.refresh_from_db()
    assert user.quota == 1_000_000 - log.quota
