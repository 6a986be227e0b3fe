"""Gemini's native API (/v1beta) through the real gateway with the google-genai SDK: passed through to a
Gemini channel (fake Gemini upstream) and to Vertex, converted for an OpenAI channel; the key in
?key=, x-goog-api-key or Authorization; streams as SSE or a JSON array; billing from usageMetadata
(cached tokens at the cache ratio, thoughts as completion); errors in Google's shape, uncharged."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from accounts.models import Option
from billing.models import Log
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.agent_upstream import ScriptedClaude
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.vertex_upstream import FakeVertex
from tests.relay.test_vertex import service_account

pytestmark = [live, pytest.mark.relay]
MODEL = "gemini-2.0-flash"  # ratio 0.05, completion ratio 4: (8 + 4×4) × 0.05 = 1.2 → 1
GPT = "gpt-4o-mini"
CLAUDE = "claude-3-5-sonnet-20241022"  # ratio 0.075, completion ratio 4: (11 + 7×4) × 0.075 = 2.925 → 3


@pytest.fixture(scope="module")
def fake() -> FakeGemini:
    return FakeGemini().start()


@pytest.fixture(scope="module")
def openai_fake() -> FakeOpenAI:
    return FakeOpenAI().start()


@pytest.fixture(scope="module")
def vertex() -> FakeVertex:
    return FakeVertex().start()


def sdk(gateway, name: str, quota: int = 1_000_000):
    user = make_user(name, quota=quota)
    token = make_token(user).key
    client = genai.Client(api_key=token, http_options=types.HttpOptions(base_url=gateway.url))
    return user, token, client


def charged(user) -> list[tuple[int, int, int]]:
    settle()
    return list(
        Log.objects.filter(user_id=user.pk, type=2).order_by("id").values_list("quota", "prompt_tokens", "completion_tokens")
    )


def test_native_generate_stream_and_billing(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models=MODEL)
    user, token, client = sdk(gateway, "gn1")
    out = client.models.generate_content(
        model=MODEL,
        contents="hi",
        config=types.GenerateContentConfig(system_instruction="Be brief.", max_output_tokens=50, temperature=0.3),
    )
    assert out.text == "Hello from Gemini!"
    assert (out.usage_metadata.prompt_token_count, out.usage_metadata.candidates_token_count) == (8, 4)
    sent = fake.last("gk")
    assert sent.path == f"/v1beta/models/{MODEL}:generateContent" and sent.headers["x-goog-api-key"] == "gk"
    assert token not in sent.query and "key" not in sent.query  # the client's key never goes upstream
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
    assert sent.body["systemInstruction"] == {"parts": [{"text": "Be brief."}], "role": "user"}
    assert sent.body["generationConfig"] == {"maxOutputTokens": 50, "temperature": 0.3}
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Hello from Gemini!"
    assert chunks[-1].usage_metadata.total_token_count == 12
    assert fake.last("gk").path == f"/v1beta/models/{MODEL}:streamGenerateContent" and fake.last("gk").query == "alt=sse"
    assert charged(user) == [(1, 8, 4), (1, 8, 4)]
    user.refresh_from_db()
    assert user.quota == 1_000_000 - 2 and user.used_quota == 2


def test_cached_and_thinking_tokens_billed(gateway, fake):
    """prompt 100 (60 cached at 0.25), candidates 10 + thoughts 20: (40 + 15 + 30×4) × 0.05 = 8.75 → 9."""
    update_option("CacheRatio", json.dumps({MODEL: 0.25}))
    propagated()
    try:
        make_channel(fake.base_url, key="rich", type=24, models=MODEL)
        user, _, client = sdk(gateway, "gn2")
        out = client.models.generate_content(model=MODEL, contents="think")
        parts = out.candidates[0].content.parts
        assert [(p.thought, p.text) for p in parts] == [(True, "Let me think."), (None, "Hello from Gemini!")]
        assert out.usage_metadata.cached_content_token_count == 60 and out.usage_metadata.thoughts_token_count == 20
        chunks = list(client.models.generate_content_stream(model=MODEL, contents="think"))
        assert chunks[-1].usage_metadata.thoughts_token_count == 20
        assert charged(user) == [(9, 100, 30), (9, 100, 30)]
    finally:
        Option.objects.filter(key="CacheRatio").delete()
        propagated()


def test_three_key_placements_and_bad_keys(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models=MODEL)
    user = make_user("gn3", quota=1_000_000)
    token = make_token(user).key
    url = f"{gateway.url}/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    for params, headers in (
        ({"key": token}, {}),
        ({}, {"x-goog-api-key": token}),
        ({}, {"Authorization": f"Bearer sk-{token}"}),
    ):
        r = httpx.post(url, params=params, headers=headers, json=body)
        assert r.status_code == 200, r.text
        assert r.json()["candidates"][0]["content"]["parts"] == [{"text": "Hello from Gemini!"}]
        assert "key" not in fake.last("gk").query
    # The same on /v1/models/{model}:generateContent, while GET /v1/models stays OpenAI's list.
    r = httpx.post(f"{gateway.url}/v1/models/{MODEL}:generateContent", params={"key": token}, json=body)
    assert r.status_code == 200 and r.json()["usageMetadata"]["totalTokenCount"] == 12
    r = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["object"] == "list" and MODEL in [m["id"] for m in r.json()["data"]]
    for params, headers in (({"key": "nope"}, {}), ({}, {"x-goog-api-key": "nope"}), ({}, {})):
        r = httpx.post(url, params=params, headers=headers, json=body)
        assert r.status_code == 401
        err = r.json()["error"]
        assert err["code"] == 401 and err["status"] == "UNAUTHENTICATED" and err["message"]
    assert charged(user) == [(1, 8, 4)] * 4


def test_json_array_stream_and_models(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models=f"{MODEL},text-embedding-004")
    user, token, client = sdk(gateway, "gn4")
    url = f"{gateway.url}/v1beta/models/{MODEL}:streamGenerateContent"
    with httpx.stream("POST", url, headers={"x-goog-api-key": token}, json={"contents": [{"parts": [{"text": "hi"}]}]}) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
        events = json.loads(r.read())
    assert [e["candidates"][0]["content"]["parts"][0]["text"] for e in events] == ["Hello", " from Gemini!"]
    assert events[-1]["usageMetadata"]["totalTokenCount"] == 12
    assert fake.last("gk").query == "alt=sse"
    names = {m.name: m for m in client.models.list()}
    assert set(names) == {f"models/{MODEL}", "models/text-embedding-004"}
    assert "generateContent" in names[f"models/{MODEL}"].supported_actions
    assert client.models.get(model=MODEL).name == f"models/{MODEL}"
    r = httpx.get(f"{gateway.url}/v1beta/models", params={"key": token})
    assert [m["name"] for m in r.json()["models"]] == [f"models/{MODEL}", "models/text-embedding-004"]
    r = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["object"] == "list" and [m["id"] for m in r.json()["data"]] == [MODEL, "text-embedding-004"]
    r = httpx.get(f"{gateway.url}/v1/models", params={"key": token})
    assert [m["name"] for m in r.json()["models"]] == [f"models/{MODEL}", "models/text-embedding-004"]
    r = httpx.get(f"{gateway.url}/v1/models/text-embedding-004", params={"key": token})
    assert r.json()["supportedGenerationMethods"] == ["embedContent", "batchEmbedContents"]
    r = httpx.get(f"{gateway.url}/v1/models/{MODEL}", headers={"Authorization": f"Bearer {token}"})
    assert r.json() == {**r.json(), "id": MODEL, "object": "model"}
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.get(model="gemini-unlisted")
    assert exc.value.code == 404 and exc.value.status == "NOT_FOUND"
    assert charged(user) == [(1, 8, 4)]


def test_count_tokens_free_and_embeddings(gateway, fake):
    make_channel(fake.base_url, key="gk", type=24, models=f"{MODEL},text-embedding-004")
    user, _, client = sdk(gateway, "gn5")
    assert client.models.count_tokens(model=MODEL, contents="hello there").total_tokens == 7
    assert fake.last("gk").path == f"/v1beta/models/{MODEL}:countTokens"
    one = client.models.embed_content(model="text-embedding-004", contents="hello")
    assert [e.values for e in one.embeddings] == [[0.3, 0.4]] or [e.values for e in one.embeddings] == [[0.1, 0.2]]
    many = client.models.embed_content(model="text-embedding-004", contents=["a", "b"])
    assert [e.values for e in many.embeddings] == [[0.1, 0.2], [0.1, 0.2]]
    assert fake.last("gk").path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    # embeddings are billed on the counted input (ratio 0.001: at least 1), countTokens not at all
    rows = charged(user)
    assert [q for q, _, _ in rows] == [1, 1] and all(p > 0 and c == 0 for _, p, c in rows)


def test_converted_for_openai_channel(gateway, openai_fake):
    make_channel(openai_fake.base_url, key="ok", type=1, models=f"{GPT},text-embedding-3-small")
    user, token, client = sdk(gateway, "gn6")
    out = client.models.generate_content(
        model=GPT,
        contents=[
            types.Content(role="user", parts=[types.Part(text="weather?")]),
            types.Content(role="model", parts=[types.Part(function_call=types.FunctionCall(name="get_weather", args={"city": "Rome"}))]),
            types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(name="get_weather", response={"temp": 20}))]),
        ],
        config=types.GenerateContentConfig(
            system_instruction="Be brief.",
            max_output_tokens=64,
            tools=[types.Tool(function_declarations=[types.FunctionDeclaration(
                name="get_weather", description="weather", parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}),
            )])],
            automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        ),
    )
    assert out.text == "Hello from the fake upstream!"
    assert out.candidates[0].finish_reason == "STOP"
    assert (out.usage_metadata.prompt_token_count, out.usage_metadata.candidates_token_count) == (11, 7)
    sent = openai_fake.requests_for("ok")[-1]
    assert sent.path == "/v1/chat/completions" and sent.body["model"] == GPT and sent.body["max_tokens"] == 64
    messages = sent.body["messages"]
    call_id = messages[2]["tool_calls"][0]["id"]
    assert messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "weather?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": call_id, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}}]},
        {"role": "tool", "tool_call_id": call_id, "name": "get_weather", "content": '{"temp":20}'},
    ]
    assert sent.body["tools"] == [{"type": "function", "function": {"name": "get_weather", "description": "weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]
    chunks = list(client.models.generate_content_stream(model=GPT, contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Hello from the fake upstream!"
    assert chunks[-1].candidates[0].finish_reason == "STOP" and chunks[-1].usage_metadata.total_token_count == 18
    assert openai_fake.requests_for("ok")[-1].body["stream_options"] == {"include_usage": True}
    url = f"{gateway.url}/v1beta/models/{GPT}:streamGenerateContent"  # no alt=sse: one JSON array
    with httpx.stream("POST", url, headers={"x-goog-api-key": token}, json={"contents": [{"parts": [{"text": "hi"}]}]}) as r:
        events = json.loads(r.read())
    assert "".join(p.get("text", "") for e in events for p in e["candidates"][0]["content"]["parts"]) == "Hello from the fake upstream!"
    assert events[-1]["candidates"][0]["finishReason"] == "STOP" and events[-1]["usageMetadata"]["totalTokenCount"] == 18
    image = types.Part.from_bytes(data=b"\x89PNG fake", mime_type="image/png")
    client.models.generate_content(model=GPT, contents=[types.Content(role="user", parts=[types.Part(text="what is this?"), image])])
    assert openai_fake.requests_for("ok")[-1].body["messages"] == [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORyBmYWtl"}},
    ]}]
    emb = client.models.embed_content(model="text-embedding-3-small", contents=["a", "b"])
    assert [e.values for e in emb.embeddings] == [[0.1, 0.2, 0.3]] * 2
    assert openai_fake.requests_for("ok")[-1].body == {"model": "text-embedding-3-small", "input": ["a", "b"]}
    assert client.models.count_tokens(model=GPT, contents="hello there").total_tokens > 0
    # text-embedding-3-small: ratio 0.01, 11 prompt tokens → 0.11 → at least 1
    assert charged(user) == [(3, 11, 7), (3, 11, 7), (3, 11, 7), (3, 11, 7), (1, 11, 0)]


def test_errors_in_google_shape_and_uncharged(gateway, fake, openai_fake):
    make_channel(fake.base_url, key="status-403", type=24, models="gemini-1.5-flash")
    make_channel(openai_fake.base_url, key="status-429", type=1, models="gpt-4o")
    make_channel(fake.base_url, key="status-400", type=24, models="gemini-1.5-pro")
    user, token, client = sdk(gateway, "gn7")
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gemini-1.5-flash", contents="hi")
    assert exc.value.code == 403 and exc.value.status == "PERMISSION_DENIED" and "fake gemini says 403" in exc.value.message
    with pytest.raises(genai_errors.ClientError) as exc:
        client.models.generate_content(model="gpt-4o", contents="hi")
    assert exc.value.code == 429 and exc.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(genai_errors.ClientError) as exc:  # the upstream's own status name is kept
        client.models.generate_content(model="gemini-1.5-pro", contents="hi")
    assert exc.value.code == 400 and exc.value.status == "FAILED_PRECONDITION"
    url = f"{gateway.url}/v1beta/models/gemini-1.5-flash:generateContent"
    r = httpx.post(url, headers={"x-goog-api-key": token}, json={"contents": []})
    assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    r = httpx.post(url, headers={"x-goog-api-key": token}, content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["code"] == 400
    r = httpx.post(f"{gateway.url}/v1beta/models/gemini-1.5-flash:fooBar", headers={"x-goog-api-key": token}, json={})
    assert r.status_code == 404 and r.json()["error"]["status"] == "NOT_FOUND"
    r = httpx.post(f"{gateway.url}/v1beta/models/nobody-serves-this:generateContent", headers={"x-goog-api-key": token}, json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code >= 400 and set(r.json()["error"]) == {"code", "message", "status"}
    # Nothing in the path or a channel's model mapping can rewrite the upstream URL.
    before = len(fake.requests)
    r = httpx.post(f"{gateway.url}/v1beta/models/gemini-1.5-flash%3Fkey=other:generateContent", headers={"x-goog-api-key": token}, json={"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 400
    make_channel(fake.base_url, key="gk-mapped", type=24, models="gemini-mapped", name="gn7-mapped", model_mapping=json.dumps({"gemini-mapped": "x:generateContent?key=attacker#"}))
    update_option("ModelRatio", json.dumps({"gemini-mapped": 1, "gemini-1.5-flash": 0.0375, "gemini-1.5-pro": 1.25, "gpt-4o": 1.25}))
    propagated()
    try:
        r = httpx.post(f"{gateway.url}/v1beta/models/gemini-mapped:generateContent", headers={"x-goog-api-key": token}, json={"contents": [{"parts": [{"text": "x"}]}]})
        assert r.status_code == 400 and r.json()["error"]["status"] == "INVALID_ARGUMENT"
    finally:
        Option.objects.filter(key="ModelRatio").delete()
        propagated()
    assert len(fake.requests) == before
    assert charged(user) == []
    user.refresh_from_db()
    assert user.quota == 1_000_000 and user.used_quota == 0


def test_vertex_native_and_sdk_on_v1beta(gateway, vertex):
    """A Vertex channel gets the request natively at publishers/google (with its OAuth token); the SDK
    pinned to v1beta reaches the /v1beta routes."""
    make_channel(vertex.base_url, key=service_account(vertex, "gn8@proj-1.iam.gserviceaccount.com"), name="vertex-gn8", type=41, models=MODEL, other="europe-west4")
    user = make_user("gn8", quota=1_000_000)
    client = genai.Client(api_key=make_token(user).key, http_options=types.HttpOptions(base_url=gateway.url, api_version="v1beta"))
    out = client.models.generate_content(model=MODEL, contents="hi")
    assert out.text == "Hello from Gemini!"
    sent = vertex.last()
    assert sent.path == f"/v1/projects/proj-1/locations/europe-west4/publishers/google/models/{MODEL}:generateContent"
    assert sent.body["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}] and sent.key in vertex.issued
    chunks = list(client.models.generate_content_stream(model=MODEL, contents="hi"))
    assert "".join(c.text or "" for c in chunks) == "Hello from Gemini!"
    assert vertex.last().path.endswith(f"/{MODEL}:streamGenerateContent") and vertex.last().query == "alt=sse"
    # A Claude model on the same Vertex account is not Gemini's: converted, to Anthropic's rawPredict.
    # Claude 3.5 Sonnet: ratio 1.5, completion ratio 5: (10 + 5×5) × 1.5 = 52.5 → 53.
    make_channel(vertex.base_url, key=service_account(vertex, "gn8c@proj-1.iam.gserviceaccount.com"), name="vertex-gn8c", type=41, models=CLAUDE, other="us-east5")
    assert client.models.generate_content(model=CLAUDE, contents="hi").text == "Hello from Claude!"
    assert vertex.last().path == "/v1/projects/proj-1/locations/us-east5/publishers/anthropic/models/claude-3-5-sonnet-v2@20241022:rawPredict"
    assert charged(user) == [(1, 8, 4), (1, 8, 4), (53, 10, 5)]


def test_converted_for_claude_channel(gateway):
    """Any channel serves the Gemini API through its chat translation: here Anthropic's Messages.
    Usage: input 100 + cache reads 60 (ratio 0.1) + cache writes 30 (1.25), output 20 (×5), model ratio 1.5:
    (100 + 6 + 37.5 + 100) × 1.5 = 365.25 → 365."""
    claude = ScriptedClaude(tool="get_weather", tool_input={"city": "Oslo"}).start()
    make_channel(claude.base_url, key="claude-k", type=14, models=CLAUDE, name="gn9-claude")
    user, _, client = sdk(gateway, "gn9")
    weather = types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather", parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}})])
    config = types.GenerateContentConfig(tools=[weather], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True))
    out = client.models.generate_content(model=CLAUDE, contents="weather in Oslo?", config=config)
    call = out.candidates[0].content.parts[0].function_call
    assert (call.name, call.args) == ("get_weather", {"city": "Oslo"})
    sent = claude.messages_requests()[-1]
    assert sent.path == "/v1/messages" and sent.body["tools"][0]["name"] == "get_weather"
    history = [
        types.Content(role="user", parts=[types.Part(text="weather in Oslo?")]),
        out.candidates[0].content,
        types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(id=call.id, name="get_weather", response={"sky": "clear"}))]),
    ]
    chunks = list(client.models.generate_content_stream(model=CLAUDE, contents=history, config=config))
    assert "".join(c.text or "" for c in chunks) == 'Tool said: {"sky":"clear"}'
    assert chunks[-1].usage_metadata.cached_content_token_count == 60
    assert charged(user) == [(365, 190, 20), (365, 190, 20)]


def test_stream_cut_when_the_balance_runs_out(gateway, fake):
    """A stream that outruns the balance is cut with an error event in Google's shape, and what it
    delivered is billed (300 chunks would cost about 400; the user has 100)."""
    make_channel(fake.base_url, key="long", type=24, models="gemini-2.0-flash-001", name="gn10-long")
    user = make_user("gn10", quota=100)
    token = make_token(user).key
    url = f"{gateway.url}/v1beta/models/gemini-2.0-flash-001:streamGenerateContent"
    with httpx.stream("POST", url, params={"alt": "sse", "key": token}, json={"contents": [{"parts": [{"text": "go"}]}]}) as r:
        events = [json.loads(line[5:]) for line in r.iter_lines() if line.startswith("data:")]
    assert 1 < len(events) < 300 and "candidates" in events[0]
    assert events[-1]["error"]["code"] == 403 and events[-1]["error"]["status"] == "PERMISSION_DENIED"
    rows = charged(user)
    user.refresh_from_db()
    assert len(rows) == 1 and 0 < rows[0][0] <= 100 + 20 and user.quota == 100 - rows[0][0]


def test_client_leaving_a_stream_pays_for_what_it_got(gateway, fake):
    """No usageMetadata arrives when the client leaves early: the delivered text is counted and billed."""
    make_channel(fake.base_url, key="long", type=24, models="gemini-2.0-flash-lite", name="gn11-long")
    user = make_user("gn11", quota=1_000_000)
    url = f"{gateway.url}/v1beta/models/gemini-2.0-flash-lite:streamGenerateContent"
    with httpx.stream("POST", url, params={"alt": "sse"}, headers={"x-goog-api-key": make_token(user).key}, json={"contents": [{"parts": [{"text": "go"}]}]}) as r:
        lines = r.iter_lines()
        got = [json.loads(line[5:]) for line in (next(lines) for _ in range(6)) if line.startswith("data:")]
    assert got and all(e["candidates"][0]["content"]["parts"] == [{"text": " word word word word"}] for e in got)
    time.sleep(1)
    rows = charged(user)
    assert len(rows) == 1 and rows[0][0] >= 1 and rows[0][2] >= 4 * len(got) and rows[0][2] < 4 * 300
