"""The OpenAI-compatible family and Azure, end to end: exact upstream URL, headers and body,
stream and non-stream, billing; plus the reasoning-effort suffix."""

from __future__ import annotations

import json

import openai
import pytest

from billing.models import Log
from relay.adaptors import adaptor_for
from relay.adaptors.base import RelayContext
from relay.state import ChannelInfo
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.compat_upstream import FakeCompatible

pytestmark = [live, pytest.mark.relay]

CHAT_QUOTA = 3  # gpt-4o-mini, 11 prompt + 7 completion: (11 + 7×4) × 0.075 = 2.925 → 3
OPENROUTER = {"HTTP-Referer": "https://github.com/Calcium-Ion/new-api", "X-Title": "New API"}

# type, channel.other, expected chat path, extra headers, stream_options forwarded
CASES = [
    (43, "", "/v1/chat/completions", {}, False),  # DeepSeek
    (25, "", "/v1/chat/completions", {}, False),  # Moonshot
    (42, "", "/v1/chat/completions", {}, False),  # Mistral
    (48, "", "/v1/chat/completions", {}, True),  # xAI
    (40, "", "/v1/chat/completions", {}, False),  # SiliconFlow
    (20, "", "/v1/chat/completions", OPENROUTER, False),  # OpenRouter
    (26, "", "/api/paas/v4/chat/completions", {}, False),  # Zhipu v4
    (45, "", "/api/v3/chat/completions", {}, True),  # VolcEngine
    (27, "", "/chat/completions", {}, False),  # Perplexity
    (31, "", "/v1/chat/completions", {}, False),  # LingYiWanWu
    (35, "", "/v1/text/chatcompletion_v2", {}, False),  # MiniMax
    (19, "", "/v1/chat/completions", {}, False),  # 360
    (46, "", "/v2/chat/completions", {}, False),  # Baidu v2
    (47, "", "/v1/chat/completions", {}, False),  # Xinference
    (39, "acct42", "/client/v4/accounts/acct42/ai/v1/chat/completions", {}, True),  # Cloudflare
    (4, "", "/v1/chat/completions", {}, True),  # Ollama
]


@pytest.fixture(scope="module")
def fake() -> FakeCompatible:
    return FakeCompatible().start()


@pytest.mark.parametrize("ctype,other,path,headers,stream_options", CASES, ids=[str(c[0]) for c in CASES])
def test_compatible_provider(gateway, fake, ctype, other, path, headers, stream_options):
    key = f"compat-{ctype}"
    make_channel(fake.base_url, key=key, type=ctype, other=other, models="gpt-4o-mini")
    user = make_user(f"u{ctype}", quota=1_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    out = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from the fake upstream!"
    sent = fake.requests_for(key)[-1]
    assert fake.raw_paths[-1] == path
    assert sent.headers["Authorization"] == f"Bearer {key}"
    lowered = {k.lower(): v for k, v in sent.headers.items()}
    for name, value in headers.items():
        assert lowered[name.lower()] == value
    assert sent.body == {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    chunks = list(client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from the fake upstream!"
    streamed = fake.requests_for(key)[-1].body
    assert ("stream_options" in streamed) is stream_options
    settle()
    assert Log.objects.get(user_id=user.pk, is_stream=False).quota == CHAT_QUOTA
    streamed_log = Log.objects.get(user_id=user.pk, is_stream=True)
    if stream_options:  # upstream usage: exact
        assert (streamed_log.prompt_tokens, streamed_log.completion_tokens) == (11, 7)
    else:  # no usage upstream: counted offline
        assert streamed_log.completion_tokens == 6 and streamed_log.quota > 0


def test_deepseek_completions_go_to_beta(gateway, fake):
    make_channel(fake.base_url, key="ds-comp", type=43, models="gpt-3.5-turbo-instruct")
    user = make_user("dsc")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    assert client.completions.create(model="gpt-3.5-turbo-instruct", prompt="hi").choices[0].text
    assert fake.raw_paths[-1] == "/beta/completions"
    settle()  # let the gateway's billing writer finish before the test database is flushed


def test_azure_deployment_version_and_api_key(gateway, fake):
    channel = make_channel(fake.base_url, key="az-key", type=3, other="2024-06-01", models="gpt-3.5-turbo,gpt-4o-mini")
    user = make_user("azu", quota=1_000_000)
    token = make_token(user)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    client.chat.completions.create(model="gpt-3.5-turbo", messages=[{"role": "user", "content": "hi"}])
    sent = fake.requests_for("az-key")[-1]
    assert fake.raw_paths[-1] == "/openai/deployments/gpt-35-turbo/chat/completions?api-version=2024-06-01"
    assert sent.headers["api-key"] == "az-key" and "Authorization" not in sent.headers
    # the client's ?api-version wins
    q = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0, default_query={"api-version": "2025-01-01"})
    chunks = list(q.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True))
    assert chunks
    assert fake.raw_paths[-1] == "/openai/deployments/gpt-4o-mini/chat/completions?api-version=2025-01-01"
    assert fake.requests_for("az-key")[-1].body["stream_options"] == {"include_usage": True}
    # neither: the default
    channel.other = ""
    channel.save()
    from tests.conftest import propagated

    propagated()
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert fake.raw_paths[-1].endswith("?api-version=2024-12-01-preview")
    settle()
    assert Log.objects.filter(user_id=user.pk).count() == 3


def test_reasoning_effort_suffix(gateway, fake):
    make_channel(fake.base_url, key="o3", models="o3-mini-high")
    user = make_user("reason", quota=1_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    client.chat.completions.create(
        model="o3-mini-high", messages=[{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}], max_tokens=20, temperature=0.2
    )
    sent = fake.requests_for("o3")[-1].body
    assert sent == {
        "model": "o3-mini", "reasoning_effort": "high", "max_completion_tokens": 20,
        "messages": [{"role": "developer", "content": "s"}, {"role": "user", "content": "hi"}],
    }
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert log.model_name == "o3-mini-high"
    assert json.loads(log.other)["reasoning_effort"] == "high"
    assert log.quota == round((11 + 7 * 4) * 0.55)  # priced as o3-mini-high


def _ctx(ctype: int, model: str, mode: str = "chat", other: str = "") -> RelayContext:
    channel = ChannelInfo(1, ctype, "c", "k", 1, "http://up", other, "", (), (), 0, 0, {}, {}, {}, {}, True, "")
    return RelayContext(mode, channel, model, model, f"/v1/{'embeddings' if mode == 'embeddings' else 'chat/completions'}", "", {"model": model, "messages": []}, b"", {})


def test_url_rules_without_network():
    assert adaptor_for(45).request_url(_ctx(45, "bot-123")) == "http://up/api/v3/bots/chat/completions"
    assert adaptor_for(45).request_url(_ctx(45, "doubao", "embeddings")) == "http://up/api/v3/embeddings"
    assert adaptor_for(26).request_url(_ctx(26, "embedding-3", "embeddings")) == "http://up/api/paas/v4/embeddings"
    assert adaptor_for(39).request_url(_ctx(39, "@cf/x", "embeddings", "a1")) == "http://up/client/v4/accounts/a1/ai/v1/embeddings"
    ctx = _ctx(48, "grok-3-mini-low")
    req = adaptor_for(48).build_request(ctx)
    assert json.loads(req.body) == {"model": "grok-3-mini", "messages": [], "reasoning_effort": "low"}
    assert adaptor_for(48).default_base_url == "https://api.x.ai" and adaptor_for(43).default_base_url == "https://api.deepseek.com"


def test_thinking_to_content_stream_and_non_stream(gateway, fake):
    make_channel(fake.base_url, key="reasoning", type=43, models="deepseek-reasoner", setting=json.dumps({"thinking_to_content": True}))
    user = make_user("thinker", quota=1_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    out = client.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "<think>\nThink AThink B\n</think>\nAnswer"
    assert "reasoning_content" not in (out.choices[0].message.model_extra or {})
    chunks = list(client.chat.completions.create(model="deepseek-reasoner", messages=[{"role": "user", "content": "hi"}], stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert pieces == ["<think>\nThink A", "Think B", "\n</think>\n", "Answer"]
    assert all("reasoning_content" not in (c.choices[0].delta.model_extra or {}) for c in chunks if c.choices)
    settle()
    # deepseek-reasoner: usage 11 + 9 on both calls, billed from upstream usage
    assert list(Log.objects.filter(user_id=user.pk).values_list("completion_tokens", flat=True)) == [9, 9]


def test_gizmo_models_route_and_price_by_wildcard(gateway, fake):
    make_channel(fake.base_url, key="gizmo", models="gpt-4-gizmo-*")
    user = make_user("gizmo", quota=1_000_000)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)
    client.chat.completions.create(model="gpt-4-gizmo-g-abc123", messages=[{"role": "user", "content": "hi"}])
    assert fake.requests_for("gizmo")[-1].body["model"] == "gpt-4-gizmo-g-abc123"
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert log.model_name == "gpt-4-gizmo-*" and log.quota == 50_000  # $0.1 per call
    assert log.content.endswith("，模型 gpt-4-gizmo-g-abc123")
