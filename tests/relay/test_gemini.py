"""Gemini (type 24) through the real gateway with the openai SDK: exact upstream URL, headers and
converted body; stream and non-stream; tools; embeddings; billing."""

from __future__ import annotations

import json

import openai
import pytest

from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.gemini_upstream import FakeGemini

pytestmark = [live, pytest.mark.relay]
MODEL = "gemini-2.0-flash"  # ratio 0.05, completion ratio 4: (8 + 4×4) × 0.05 = 1.2 → 1


@pytest.fixture(scope="module")
def fake() -> FakeGemini:
    return FakeGemini().start()


def client_for(gateway, name: str):
    user = make_user(name, quota=1_000_000)
    return user, openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(user).key}", max_retries=0)


def test_gemini_chat_non_stream_and_stream(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models=MODEL)
    user, client = client_for(gateway, "g1")
    out = client.chat.completions.create(
        model=MODEL, max_tokens=50, temperature=0.3, stop=["END"],
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}, {"role": "user", "content": "again"}],
    )
    assert out.choices[0].message.content == "Hello from Gemini!" and out.choices[0].finish_reason == "stop"
    assert (out.usage.prompt_tokens, out.usage.completion_tokens) == (8, 4)
    sent = fake.last("gk")
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent" and sent.headers["x-goog-api-key"] == "gk"
    assert sent.body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]}, {"role": "model", "parts": [{"text": "yo"}]}, {"role": "user", "parts": [{"text": "again"}]},
    ]
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert sent.body["generationConfig"] == {"temperature": 0.3, "maxOutputTokens": 50, "stopSequences": ["END"]}
    assert {s["category"]: s["threshold"] for s in sent.body["safetySettings"]}["HARM_CATEGORY_CIVIC_INTEGRITY"] == "BLOCK_NONE"
    chunks = list(client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "hi"}], stream=True, stream_options={"include_usage": True}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello from Gemini!"
    assert fake.last("gk").path == f"/v1beta/models/{MODEL}:streamGenerateContent" and fake.last("gk").query == "alt=sse"
    assert chunks[-1].usage.total_tokens == 12
    settle()
    assert list(Log.objects.filter(user_id=user.pk).values_list("quota", "prompt_tokens", "completion_tokens")) == [(1, 8, 4), (1, 8, 4)]


def test_gemini_tools(gateway, fake):
    make_channel(fake.base_url, key="tools", type=24, models=MODEL)
    user, client = client_for(gateway, "g2")
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "additionalProperties": False, "properties": {"city": {"type": "string", "format": "uri", "default": "x"}}}}}]
    messages = [
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": '{"temp": 20}'},
    ]
    out = client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    call = out.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert out.choices[0].finish_reason == "tool_calls"
    sent = fake.last("tools").body
    assert sent["tools"] == [{"functionDeclarations": [{"name": "get_weather", "description": "", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}]}]
    assert sent["contents"][1:] == [
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 20}}}]},
    ]
    settle()  # let the gateway's billing writer finish before the test database is flushed


def test_gemini_embeddings_and_errors(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models="text-embedding-004")
    user, client = client_for(gateway, "g3")
    emb = client.embeddings.create(model="text-embedding-004", input=["a", "b"])
    assert [d.embedding for d in emb.data] == [[0.1, 0.2], [0.1, 0.2]]
    sent = fake.last("gk")
    assert sent.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.body == {"requests": [{"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}}, {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}}]}
    make_channel(fake.base_url, key="status-403", type=24, models="gemini-1.5-flash")
    with pytest.raises(openai.PermissionDeniedError) as exc:
        client.chat.completions.create(model="gemini-1.5-flash", messages=[{"role": "user", "content": "hi"}])
    assert "fake gemini says 403" in str(exc.value)
    settle()  # let the gateway's billing writer finish before the test database is flushed
