"""Anthropic Claude (type 14) through the real gateway: OpenAI chat on Claude, native /v1/messages
(official anthropic SDK) on Claude and on OpenAI-type channels, with Claude-style cache billing."""

from __future__ import annotations

import json

import anthropic
import httpx
import openai
import orjson
import pytest

from billing.models import Log
from relay.adaptors.base import RelayContext
from relay.modes.claude_convert import OpenAIToClaudeStream
from relay.state import ChannelInfo
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.anthropic_upstream import FakeAnthropic

pytestmark = [live, pytest.mark.relay]

MODEL = "claude-3-5-sonnet-20241022"  # ratio 1.5, completion ratio 5, cache ratio 0.1, cache creation 1.25
PLAIN_QUOTA = 53  # (10 + 5×5) × 1.5 = 52.5 → 53
CACHE_QUOTA = 158  # (10 + 200×0.1 + 40×1.25 + 5×5) × 1.5 = 157.5 → 158


@pytest.fixture(scope="module")
def fake_claude() -> FakeAnthropic:
    return FakeAnthropic().start()


def setup_user(name: str, quota: int = 1_000_000):
    user = make_user(name, quota=quota)
    token = make_token(user, name=f"{name}-key")
    return user, token


def claude_channel(fake: FakeAnthropic, key: str = "ck"):
    return make_channel(fake.base_url, key=key, type=14, models=MODEL, name=f"claude-{key}")


def oai(gateway, token) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)


def ant(gateway, token) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=f"sk-{token.key}", max_retries=0)


def quota_after(user) -> int:
    settle()
    user.refresh_from_db()
    return user.quota


# -- OpenAI chat on a Claude channel ---------------------------------------------------------------
def test_openai_chat_on_claude_converts_request_and_response(gateway, fake_claude):
    channel = claude_channel(fake_claude, "plain")
    user, token = setup_user("cl1")
    out = oai(gateway, token).chat.completions.create(
        model=MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        stop="END",
        temperature=0.5,
    )
    assert out.choices[0].message.content == "Hello from Claude!"
    assert out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (10, 5)
    sent = fake_claude.requests_for("plain")[-1]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == "plain" and sent.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in sent.headers
    assert sent.body == {
        "model": MODEL,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "max_tokens": 8192,
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }
    assert quota_after(user) == 1_000_000 - PLAIN_QUOTA
    log = Log.objects.get(user_id=user.pk)
    assert (log.quota, log.prompt_tokens, log.completion_tokens, log.channel_id) == (PLAIN_QUOTA, 10, 5, channel.pk)


def test_openai_stream_on_claude_with_usage(gateway, fake_claude):
    claude_channel(fake_claude, "plain")
    user, token = setup_user("cl2")
    chunks = list(
        oai(gateway, token).chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello from Claude!"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage.prompt_tokens == 10 and chunks[-1].usage.completion_tokens == 5
    assert fake_claude.requests_for("plain")[-1].body["stream"] is True
    assert quota_after(user) == 1_000_000 - PLAIN_QUOTA
    assert Log.objects.get(user_id=user.pk).is_stream is True


def test_openai_tools_on_claude(gateway, fake_claude):
    claude_channel(fake_claude, "tools")
    user, token = setup_user("cl3")
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
    ]
    client = oai(gateway, token)
    out = client.chat.completions.create(model=MODEL, messages=messages, tools=tools, tool_choice="required")
    call = out.choices[0].message.tool_calls[0]
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("toolu_01", "get_weather", {"city": "Paris"})
    assert out.choices[0].finish_reason == "tool_calls"
    sent = fake_claude.requests_for("tools")[-1].body
    assert sent["tools"] == [{"name": "get_weather", "description": "Weather", "input_schema": tools[0]["function"]["parameters"]}]
    assert sent["tool_choice"] == {"type": "any"}
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Rome"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]},
    ]
    chunks = list(client.chat.completions.create(model=MODEL, messages=messages, tools=tools, stream=True))
    deltas = [c.choices[0].delta.tool_calls for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert deltas[0][0].id == "toolu_01" and deltas[0][0].function.name == "get_weather"
    assert "".join(d[0].function.arguments or "" for d in deltas) == '{"city": "Paris"}'
    settle()  # let the gateway's billing writer finish before the test database is flushed


def test_thinking_becomes_reasoning_content(gateway, fake_claude):
    claude_channel(fake_claude, "thinking")
    user, token = setup_user("cl4")
    client = oai(gateway, token)
    out = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert out.choices[0].message.content == "Hello from Claude!"
    assert out.choices[0].message.model_extra["reasoning_content"] == "Let me think."
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content") or "" for c in chunks if c.choices)
    assert reasoning == "Let me think."
    settle()  # let the gateway's billing writer finish before the test database is flushed


def test_cache_tokens_billed_with_their_ratios_on_chat(gateway, fake_claude):
    claude_channel(fake_claude, "cache")
    user, token = setup_user("cl5")
    out = oai(gateway, token).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert out.usage.prompt_tokens == 250
    assert out.usage.prompt_tokens_details.cached_tokens == 200
    assert quota_after(user) == 1_000_000 - CACHE_QUOTA
    other = json.loads(Log.objects.get(user_id=user.pk).other)
    assert other["cache_tokens"] == 200 and other["cache_creation_tokens"] == 40 and other["cache_ratio"] == 0.1


# -- native /v1/messages on Claude ---------------------------------------------------------------
def test_native_messages_pass_through_with_claude_billing(gateway, fake_claude):
    channel = claude_channel(fake_claude, "cache")
    user, token = setup_user("cl6")
    msg = ant(gateway, token).messages.create(
        model=MODEL, max_tokens=100, system="Be brief.", metadata={"user_id": "u1"},
        messages=[{"role": "user", "content": "hi"}], extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
    )
    assert msg.content[0].text == "Hello from Claude!"
    assert msg.usage.cache_read_input_tokens == 200 and msg.usage.input_tokens == 10
    sent = fake_claude.requests_for("cache")[-1]
    assert sent.headers["x-api-key"] == "cache" and sent.headers["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert sent.body == {"model": MODEL, "max_tokens": 100, "system": "Be brief.", "metadata": {"user_id": "u1"}, "messages": [{"role": "user", "content": "hi"}]}
    assert quota_after(user) == 1_000_000 - CACHE_QUOTA
    log = Log.objects.get(user_id=user.pk)
    assert (log.quota, log.prompt_tokens, log.completion_tokens, log.channel_id) == (CACHE_QUOTA, 250, 5, channel.pk)
    assert json.loads(log.other)["claude"] is True


def test_native_messages_stream_and_x_api_key(gateway, fake_claude):
    claude_channel(fake_claude, "thinking")
    user, token = setup_user("cl7")
    # raw httpx with x-api-key, to see the exact SSE framing
    with httpx.stream(
        "POST", f"{gateway.url}/v1/messages",
        headers={"x-api-key": f"sk-{token.key}", "anthropic-version": "2023-06-01"},
        json={"model": MODEL, "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]},
    ) as r:
        raw = r.read().decode()
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    assert raw.startswith("event: message_start\ndata: {")
    assert "event: message_stop\n" in raw and "[DONE]" not in raw
    # and with the SDK
    with ant(gateway, token).messages.stream(model=MODEL, max_tokens=50, messages=[{"role": "user", "content": "hi"}]) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "Hello from Claude!"
    assert quota_after(user) == 1_000_000 - 2 * PLAIN_QUOTA
    assert Log.objects.filter(user_id=user.pk, is_stream=True).count() == 2


def test_native_messages_errors_in_claude_shape(gateway, fake_claude):
    claude_channel(fake_claude, "status-429")
    user, token = setup_user("cl8")
    with pytest.raises(anthropic.RateLimitError) as exc:
        ant(gateway, token).messages.create(model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}])
    body = exc.value.body
    assert body["type"] == "error" and "fake claude says 429" in body["error"]["message"]
    with pytest.raises(anthropic.AuthenticationError) as exc:
        anthropic.Anthropic(base_url=gateway.url, api_key="sk-" + "x" * 48, max_retries=0).messages.create(
            model=MODEL, max_tokens=10, messages=[{"role": "user", "content": "hi"}]
        )
    assert exc.value.body["type"] == "error"
    r = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": f"sk-{token.key}"}, json={"model": MODEL, "messages": []})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("field messages is required")
    assert quota_after(user) == 1_000_000


# -- native /v1/messages on an OpenAI-type channel ----------------------------------------------------
def test_messages_on_openai_channel(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="to-openai", models=MODEL)
    user, token = setup_user("cl9")
    client = ant(gateway, token)
    msg = client.messages.create(
        model=MODEL, max_tokens=64, system=[{"type": "text", "text": "Be brief."}], stop_sequences=["X"],
        messages=[{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    )
    assert msg.type == "message" and msg.content[0].text == "Hello from the fake upstream!"
    assert msg.stop_reason == "end_turn" and (msg.usage.input_tokens, msg.usage.output_tokens) == (11, 7)
    sent = fake_upstream.requests_for("to-openai")[-1]
    assert sent.path == "/v1/chat/completions" and sent.headers["Authorization"] == "Bearer to-openai"
    assert sent.body == {"model": MODEL, "max_tokens": 64, "stop": "X", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}]}
    with client.messages.stream(model=MODEL, max_tokens=64, messages=[{"role": "user", "content": "hi"}]) as stream:
        events = [e.type for e in stream]
        final = stream.get_final_message()
    assert final.content[0].text == "Hello from the fake upstream!"
    assert final.usage.output_tokens == 7
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert fake_upstream.requests_for("to-openai")[-1].body["stream_options"] == {"include_usage": True}
    settle()
    # (11 + 7×5) × 1.5 = 69 per call
    assert sorted(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True)) == [69, 69]


def test_openai_stream_to_claude_events_keeps_tools_and_thinking():
    channel = ChannelInfo(1, 1, "c", "k", 1, "", "", "", (), (), 0, 0, {}, {}, {}, {}, True, "")
    ctx = RelayContext("chat", channel, MODEL, MODEL, "/v1/chat/completions", "", {}, b"", {})
    tr = OpenAIToClaudeStream(ctx, 12)
    chunks = [
        {"id": "c1", "choices": [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "hmm"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"content": "ok"}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_9", "function": {"name": "f", "arguments": ""}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":1}"}}]}}]},
        {"id": "c1", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"id": "c1", "choices": [], "usage": {"prompt_tokens": 12, "completion_tokens": 9}},
    ]
    frames = [f for c in chunks for f in tr.feed("", orjson.dumps(c))] + tr.finish()
    events = [(f.split(b"\n")[0][7:].decode(), orjson.loads(f.split(b"\n")[1][6:])) for f in frames]
    assert [e for e, _ in events] == [
        "message_start",
        "content_block_start", "content_block_delta",  # thinking
        "content_block_stop", "content_block_start", "content_block_delta",  # text
        "content_block_stop", "content_block_start", "content_block_delta",  # tool_use
        "content_block_stop", "message_delta", "message_stop",
    ]
    assert events[1][1]["content_block"]["type"] == "thinking" and events[2][1]["delta"] == {"type": "thinking_delta", "thinking": "hmm"}
    assert events[7][1]["content_block"] == {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}
    assert events[8][1] == {"type": "content_block_delta", "index": 2, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":1}"}}
    assert events[10][1]["delta"]["stop_reason"] == "tool_use" and events[10][1]["usage"]["output_tokens"] == 9


def test_thinking_suffix_enables_extended_thinking(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="suffix", type=14, models="claude-3-7-sonnet-20250219-thinking")
    user, token = setup_user("cl10")
    oai(gateway, token).chat.completions.create(
        model="claude-3-7-sonnet-20250219-thinking", messages=[{"role": "user", "content": "hi"}], max_tokens=100, top_p=0.5
    )
    sent = fake_claude.requests_for("suffix")[-1].body
    assert sent["model"] == "claude-3-7-sonnet-20250219"
    assert (sent["max_tokens"], sent["thinking"], sent["temperature"]) == (1280, {"type": "enabled", "budget_tokens": 1024}, 1.0)
    assert "top_p" not in sent
    ant(gateway, token).messages.create(
        model="claude-3-7-sonnet-20250219-thinking", max_tokens=4000, thinking={"type": "enabled", "budget_tokens": 2000},
        messages=[{"role": "user", "content": "hi"}],
    )
    sent = fake_claude.requests_for("suffix")[-1].body
    assert sent["model"] == "claude-3-7-sonnet-20250219" and sent["thinking"]["budget_tokens"] == 2000 and sent["max_tokens"] == 4000
    settle()
    log = Log.objects.filter(user_id=user.pk).first()
    assert log.model_name == "claude-3-7-sonnet-20250219-thinking"


def test_claude_request_and_openai_answer_conversions():
    from relay.adaptors.base import Usage
    from relay.modes.claude_convert import claude_to_openai_request, openai_to_claude_response

    body = {
        "model": MODEL, "max_tokens": 10, "stop_sequences": ["A", "B"],
        "system": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}],
        "tools": [{"name": "f", "description": "d", "input_schema": {"type": "object", "properties": {}}}],
        "tool_choice": {"type": "tool", "name": "f"},
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "AAA"}}]},
            {"role": "assistant", "content": [{"type": "text", "text": "calling"}, {"type": "tool_use", "id": "tu1", "name": "f", "input": {"x": 1}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "tu1", "content": [{"type": "text", "text": "42"}]}]},
        ],
    }
    out = claude_to_openai_request(body, MODEL)
    assert out["stop"] == ["A", "B"] and out["tool_choice"] == {"type": "function", "function": {"name": "f"}}
    assert out["messages"] == [
        {"role": "system", "content": "one\ntwo"},
        {"role": "user", "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}}]},
        {"role": "assistant", "content": "calling", "tool_calls": [{"id": "tu1", "type": "function", "function": {"name": "f", "arguments": '{"x":1}'}}]},
        {"role": "tool", "tool_call_id": "tu1", "content": "42"},
    ]
    answer = {"id": "c1", "choices": [{"message": {"content": "hi", "reasoning_content": "r", "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": '{"y":2}'}}]}, "finish_reason": "tool_calls"}]}
    msg = openai_to_claude_response(answer, MODEL, Usage(30, 5, 20, 0))
    assert msg["content"] == [{"type": "thinking", "thinking": "r", "signature": ""}, {"type": "text", "text": "hi"}, {"type": "tool_use", "id": "call_1", "name": "f", "input": {"y": 2}}]
    assert msg["stop_reason"] == "tool_use"
    assert msg["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 20, "cache_creation_input_tokens": 0}
