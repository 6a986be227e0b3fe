"""OpenAI's Responses API through the real gateway with the official `openai` SDK: native on OpenAI
and Azure channels, converted to chat on Claude and OpenAI-compatible channels, billed from usage
(cached input at the cache ratio, built-in tools per call), and every follow-up on a response
reaching the channel that created it."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from billing.models import Log
from relay.models import Channel
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.responses_upstream import FakeResponsesAPI

pytestmark = [live, pytest.mark.relay]

GPT = "gpt-4o"  # ratio 1.25, completion ratio 4, cache ratio 0.5
NATIVE_QUOTA = 45  # (12 + 6×4) × 1.25
NATIVE_CACHE_QUOTA = 40  # (4 + 8×0.5 + 6×4) × 1.25
SEARCH_QUOTA = 45 + 12_500  # web_search_preview on gpt-4o*: $25 per 1K calls × 500,000 quota per $
CLAUDE = "claude-3-5-sonnet-20241022"  # ratio 1.5, completion ratio 5
CLAUDE_QUOTA = 53  # (10 + 5×5) × 1.5 = 52.5 → 53
CHAT_QUOTA = 60  # (20 + 7×4) × 1.25
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture(scope="module")
def fake_resp() -> FakeResponsesAPI:
    return FakeResponsesAPI().start()


@pytest.fixture(scope="module")
def fake_resp2() -> FakeResponsesAPI:
    return FakeResponsesAPI().start()


@pytest.fixture(scope="module")
def fake_claude() -> FakeAnthropic:
    return FakeAnthropic().start()


def setup_user(name: str, quota: int = 1_000_000):
    user = make_user(name, quota=quota)
    return user, make_token(user, name=f"{name}-key")


def oai(gateway, token) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)


def charged(user, start: int = 1_000_000) -> int:
    settle()
    user.refresh_from_db()
    return start - user.quota


def native_channel(fake, key: str, name: str = "", **fields) -> Channel:
    return make_channel(fake.base_url, key=key, type=1, models=GPT, name=name or f"resp-{key}", **fields)


# -- native (OpenAI type) ------------------------------------------------------------------------
def test_create_native(gateway, fake_resp):
    native_channel(fake_resp, "plain")
    user, token = setup_user("rs1")
    out = oai(gateway, token).responses.create(model=GPT, input="hi", instructions="Be brief.")
    assert out.output_text == "Hello from Responses!"
    assert (out.usage.input_tokens, out.usage.output_tokens) == (12, 6)
    sent = fake_resp.seen("/v1/responses")[-1]
    assert sent.key == "plain" and sent.body["input"] == "hi" and sent.body["instructions"] == "Be brief."
    assert charged(user) == NATIVE_QUOTA
    log = Log.objects.get(user_id=user.pk)
    assert (log.prompt_tokens, log.completion_tokens, log.quota) == (12, 6, NATIVE_QUOTA)


def test_stream_native_with_cached_tokens(gateway, fake_resp):
    native_channel(fake_resp, "cache")
    user, token = setup_user("rs2")
    with oai(gateway, token).responses.stream(model=GPT, input="hi") as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert "response.output_text.delta" in kinds and kinds[-1] == "response.completed"
    assert final.output_text == "Hello from Responses!"
    assert final.usage.input_tokens_details.cached_tokens == 8
    assert charged(user) == NATIVE_CACHE_QUOTA
    assert Log.objects.get(user_id=user.pk).is_stream is True


def test_web_search_priced_per_call(gateway, fake_resp):
    native_channel(fake_resp, "search")
    user, token = setup_user("rs3")
    out = oai(gateway, token).responses.create(
        model=GPT, input="news?", tools=[{"type": "web_search_preview"}]
    )
    assert [item.type for item in out.output] == ["web_search_call", "message"]
    assert charged(user) == SEARCH_QUOTA
    with oai(gateway, token).responses.stream(
        model=GPT, input="news?", tools=[{"type": "web_search_preview"}]
    ) as s:
        s.until_done()
    assert charged(user) == 2 * SEARCH_QUOTA


def test_azure_native_path(gateway, fake_resp):
    make_channel(fake_resp.base_url, key="azure-key", type=3, models="gpt-3.5-turbo", name="azure-resp")
    _user, token = setup_user("rs4")
    out = oai(gateway, token).responses.create(model="gpt-3.5-turbo", input="hi")
    assert out.output_text == "Hello from Responses!"
    sent = fake_resp.seen("/responses")[-1]
    assert sent.path == "/openai/v1/responses"
    assert sent.headers["api-key"] == "azure-key" and "Authorization" not in sent.headers
    assert sent.body["model"] == "gpt-35-turbo"  # the deployment, named as the Azure adaptor names it
    settle()


# -- converted (Claude, OpenAI-compatible) -------------------------------------------------------
def test_claude_create_and_stream(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="plain", type=14, models=CLAUDE, name="claude-plain")
    user, token = setup_user("rs5")
    client = oai(gateway, token)
    out = client.responses.create(model=CLAUDE, input="hi", instructions="Be brief.", max_output_tokens=100)
    assert out.output_text == "Hello from Claude!" and out.id.startswith("resp_")
    assert (out.usage.input_tokens, out.usage.output_tokens) == (10, 5)
    sent = fake_claude.requests_for("plain")[-1].body
    assert sent["system"] == "Be brief." and sent["max_tokens"] == 100
    assert sent["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi"}]}]
    assert charged(user) == CLAUDE_QUOTA
    with client.responses.stream(model=CLAUDE, input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == "Hello from Claude!"
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.output_text == "Hello from Claude!" and final.usage.output_tokens == 5
    assert charged(user) == 2 * CLAUDE_QUOTA


def test_function_call_round_trip_on_claude(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="tools", type=14, models=CLAUDE, name="claude-tools")
    user, token = setup_user("rs6")
    client = oai(gateway, token)
    out = client.responses.create(model=CLAUDE, input="weather in Paris?", tools=[WEATHER])
    call = next(item for item in out.output if item.type == "function_call")
    assert (call.name, json.loads(call.arguments), call.call_id) == (
        "get_weather",
        {"city": "Paris"},
        "toolu_01",
    )
    sent = fake_claude.requests_for("tools")[-1].body
    assert sent["tools"][0]["name"] == "get_weather"
    follow = [
        {"role": "user", "content": "weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]
    client.responses.create(model=CLAUDE, input=follow, tools=[WEATHER])
    assert fake_claude.requests_for("tools")[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}
            ],
        },
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "content": "sunny"}]},
    ]
    with client.responses.stream(model=CLAUDE, input="weather?", tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == '{"city": "Paris"}'
    done = next(e for e in events if e.type == "response.function_call_arguments.done")
    assert done.arguments == '{"city": "Paris"}'
    assert final.output[0].type == "function_call" and final.output[0].name == "get_weather"
    assert charged(user) == 3 * CLAUDE_QUOTA


def test_converted_follow_ups_and_previous_response_id(gateway, fake_claude):
    channel = make_channel(fake_claude.base_url, key="plain", type=14, models=CLAUDE, name="claude-prev")
    user, token = setup_user("rs7")
    client = oai(gateway, token)
    first = client.responses.create(model=CLAUDE, input="hi")
    got = client.responses.retrieve(first.id)
    assert got.id == first.id and got.output_text == "Hello from Claude!"
    items = client.responses.input_items.list(first.id)
    assert [i.type for i in items.data] == ["message"]
    second = client.responses.create(model=CLAUDE, input="and again", previous_response_id=first.id)
    assert fake_claude.requests_for("plain")[-1].body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Hello from Claude!"}]},
        {"role": "user", "content": [{"type": "text", "text": "and again"}]},
    ]
    with client.responses.stream(model=CLAUDE, input="streamed", previous_response_id=second.id) as stream:
        third = stream.get_final_response()
    assert client.responses.retrieve(third.id).output_text == "Hello from Claude!"
    assert len(fake_claude.requests_for("plain")[-1].body["messages"]) == 5
    with pytest.raises(openai.BadRequestError):
        client.responses.cancel(second.id)  # converted answers are never background ones
    client.responses.delete(first.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(first.id)
    # someone else's response id is not found either
    _, other = setup_user("rs7b")
    with pytest.raises(openai.NotFoundError):
        oai(gateway, other).responses.retrieve(second.id)
    # the channel is gone: a clear 4xx, and no charge
    before = charged(user)
    channel.delete()
    propagated()
    with pytest.raises(openai.APIStatusError) as err:
        client.responses.create(model=CLAUDE, input="more", previous_response_id=second.id)
    assert err.value.status_code == 409 and "no longer available" in err.value.message
    assert charged(user) == before == 3 * CLAUDE_QUOTA


def test_compatible_channel_stream_is_billed_from_chat_usage(gateway, fake_resp):
    make_channel(fake_resp.base_url, key="cache", type=7, models=GPT, name="ohmygpt-like")
    user, token = setup_user("rs8")
    with oai(gateway, token).responses.stream(model=GPT, input="hi") as stream:
        final = stream.get_final_response()
    sent = fake_resp.seen("/chat/completions")[-1].body
    assert sent["stream"] is True and sent["stream_options"] == {"include_usage": True}
    assert final.output_text == "Hello from chat!"
    assert final.usage.input_tokens_details.cached_tokens == 4
    assert charged(user) == 58  # (16 + 4×0.5 + 7×4) × 1.25 = 57.5 → 58


# -- affinity ------------------------------------------------------------------------------------
def test_follow_ups_go_to_the_creating_channel(gateway, fake_resp, fake_resp2):
    a = native_channel(fake_resp, "aff-a", name="aff-a")
    b = native_channel(fake_resp2, "aff-b", name="aff-b")
    user, token = setup_user("rs9")
    client = oai(gateway, token)
    made: dict[str, FakeResponsesAPI] = {}
    for _ in range(8):
        out = client.responses.create(model=GPT, input="hi")
        owner = fake_resp if out.id in fake_resp.stored else fake_resp2
        made[out.id] = owner
    assert {id(f) for f in made.values()} == {id(fake_resp), id(fake_resp2)}  # both channels served
    for rid, owner in made.items():
        assert client.responses.retrieve(rid).id == rid
        assert owner.seen(f"/v1/responses/{rid}", "GET")
        other = fake_resp2 if owner is fake_resp else fake_resp
        assert not other.seen(f"/v1/responses/{rid}", "GET")
        client.responses.input_items.list(rid)
        assert owner.seen(f"/v1/responses/{rid}/input_items", "GET")
    for _ in range(4):  # streamed: the id is recorded before the client has more than response.created
        with client.responses.stream(model=GPT, input="hi") as stream:
            sid = stream.get_final_response().id
        owner = fake_resp if sid in fake_resp.stored else fake_resp2
        assert client.responses.retrieve(sid).id == sid and owner.seen(f"/v1/responses/{sid}", "GET")
    rid, owner = next(iter(made.items()))
    before = len(owner.seen("/v1/responses"))
    for _ in range(4):
        client.responses.create(model=GPT, input="more", previous_response_id=rid)
    assert len(owner.seen("/v1/responses")) == before + 4
    assert owner.seen("/v1/responses")[-1].body["previous_response_id"] == rid
    assert client.responses.cancel(rid).status == "cancelled"
    client.responses.delete(rid)
    assert owner.seen(f"/v1/responses/{rid}", "DELETE")
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(rid)
    gone = next(r for r, f in made.items() if f is fake_resp and r != rid)
    a.status = 2  # manually disabled
    a.save()
    propagated()
    with pytest.raises(openai.APIStatusError) as err:
        client.responses.retrieve(gone)
    assert err.value.status_code == 409
    assert b.status == 1
    assert charged(user) == 16 * NATIVE_QUOTA  # the creates; follow-ups are not billed


# -- errors --------------------------------------------------------------------------------------
def test_errors_in_openai_shape_and_not_charged(gateway, fake_resp, fake_claude):
    native_channel(fake_resp, "status-500", name="resp-500")
    user, token = setup_user("rs10")
    resp = httpx.post(
        f"{gateway.v1}/responses", headers={"Authorization": f"Bearer sk-{token.key}"}, json={"model": GPT}
    )
    assert resp.status_code == 400
    assert set(resp.json()["error"]) >= {"message", "type", "code"}
    with pytest.raises(openai.InternalServerError) as err:
        oai(gateway, token).responses.create(model=GPT, input="hi")
    assert "fake failure 500" in err.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        oai(gateway, token).responses.create(model=GPT, input="hi", previous_response_id="resp_nope")
    assert bad.value.code == "previous_response_not_found"
    with pytest.raises(openai.NotFoundError):
        oai(gateway, token).responses.retrieve("resp_nope")
    assert charged(user) == 0
    assert not Log.objects.filter(user_id=user.pk, type=2).exists()


def test_images_and_instructions_reach_claude(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="plain", type=14, models=CLAUDE, name="claude-img")
    _user, token = setup_user("rs11")
    image = "data:image/png;base64,iVBORw0KGgo="
    content = [{"type": "input_text", "text": "what is this?"}, {"type": "input_image", "image_url": image}]
    out = oai(gateway, token).responses.create(
        model=CLAUDE, instructions="Be brief.", input=[{"role": "user", "content": content}]
    )
    assert out.output_text == "Hello from Claude!"
    sent = fake_claude.requests_for("plain")[-1].body
    assert sent["system"] == "Be brief."
    assert sent["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
                },
            ],
        }
    ]
    settle()


def test_gemini_channel_converted(gateway):
    from tests.fakes.gemini_upstream import FakeGemini

    fake = FakeGemini().start()
    make_channel(fake.base_url, key="gk", type=24, models="gemini-2.0-flash", name="gemini-resp")
    user, token = setup_user("rs12")
    client = oai(gateway, token)
    out = client.responses.create(model="gemini-2.0-flash", input="hi")
    assert out.output_text == "Hello from Gemini!" and (out.usage.input_tokens, out.usage.output_tokens) == (
        8,
        4,
    )
    with client.responses.stream(model="gemini-2.0-flash", input="hi") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello from Gemini!" and final.usage.output_tokens == 4
    assert charged(user) == 2  # (8 + 4×4) × 0.05 = 1.2 → 1, twice


def test_sensitive_words_refused_without_charge(gateway, fake_resp):
    from newapi_site.options import update_option

    native_channel(fake_resp, "plain")
    user, token = setup_user("rs13")
    update_option("SensitiveWords", "secret-plan")
    update_option("CheckSensitiveOnPromptEnabled", "true")
    propagated()
    try:
        with pytest.raises(openai.BadRequestError) as err:
            oai(gateway, token).responses.create(
                model=GPT,
                input=[{"role": "user", "content": [{"type": "input_text", "text": "the SECRET-PLAN"}]}],
            )
        assert err.value.code == "sensitive_words_detected"
        assert charged(user) == 0
    finally:
        update_option("SensitiveWords", "test_sensitive")
        propagated()


def test_thinking_becomes_a_reasoning_item(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="thinking", type=14, models=CLAUDE, name="claude-think")
    _user, token = setup_user("rs14")
    client = oai(gateway, token)
    out = client.responses.create(model=CLAUDE, input="hi")
    assert [item.type for item in out.output] == ["reasoning", "message"]
    assert out.output[0].summary[0].text == "Let me think." and out.output_text == "Hello from Claude!"
    with client.responses.stream(model=CLAUDE, input="hi") as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert (
        "response.reasoning_summary_text.delta" in kinds and "response.reasoning_summary_text.done" in kinds
    )
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output[0].summary[0].text == "Let me think." and final.output_text == "Hello from Claude!"
    settle()


def test_failed_streams_are_not_charged(gateway, fake_resp, fake_claude):
    native_channel(fake_resp, "status-500", name="resp-500s")
    make_channel(fake_claude.base_url, key="status-529", type=14, models=CLAUDE, name="claude-529")
    user, token = setup_user("rs15")
    client = oai(gateway, token)
    for model in (GPT, CLAUDE):
        with (
            pytest.raises(openai.APIStatusError) as err,
            client.responses.stream(model=model, input="hi") as stream,
        ):
            stream.until_done()
        assert err.value.status_code >= 500 and err.value.body is not None
    assert charged(user) == 0


def test_follow_ups_use_the_key_that_created_the_response(gateway, fake_resp):
    from relay.channels import multi_key

    keys = ["mk-a", "mk-b", "mk-c"]
    make_channel(
        fake_resp.base_url,
        key="\n".join(keys),
        type=1,
        models=GPT,
        name="resp-multi",
        channel_info=multi_key.new_info(len(keys), "random"),
    )
    user, token = setup_user("rs16")
    client = oai(gateway, token)
    made = {client.responses.create(model=GPT, input="hi").id for _ in range(9)}
    key_of = {rid: fake_resp.stored[rid]["key"] for rid in made}
    assert len(set(key_of.values())) > 1  # the keys took turns at random
    for rid in made:
        client.responses.retrieve(rid)
        assert fake_resp.seen(f"/v1/responses/{rid}", "GET")[-1].key == key_of[rid]
        client.responses.create(model=GPT, input="more", previous_response_id=rid)
        assert fake_resp.seen("/v1/responses")[-1].key == key_of[rid]
    assert charged(user) == 18 * NATIVE_QUOTA


def test_a_stream_past_the_balance_is_cut_with_an_error_event(gateway):
    from tests.relay.test_overdraft import CHUNKS, MODEL, SLACK, WORDS, LongStreams

    upstream = LongStreams().start()
    make_channel(upstream.base_url, key="long-resp", type=7, models=MODEL, name="long-resp")
    user, token = setup_user("rs17", quota=20_000)
    events = list(oai(gateway, token).responses.create(model=MODEL, input="write forever", stream=True))
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert events[-1].type == "error" and "quota" in events[-1].message
    assert "response.completed" not in [e.type for e in events]
    assert 0 < len(text) < len(WORDS) * CHUNKS  # cut well before the end
    settle()
    user.refresh_from_db()
    log = Log.objects.get(user_id=user.pk)
    assert log.completion_tokens == len(text.split())  # billed what was delivered
    assert log.quota == 20_000 - user.quota and user.quota >= -SLACK


def test_structured_output_and_tool_choice_reach_a_chat_channel(gateway, fake_resp):
    make_channel(fake_resp.base_url, key="plain", type=7, models=GPT, name="ohmygpt-json")
    user, token = setup_user("rs18")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    out = oai(gateway, token).responses.create(
        model=GPT,
        input=[{"role": "developer", "content": "Answer in JSON."}, {"role": "user", "content": "hi"}],
        text={"format": {"type": "json_schema", "name": "answer", "schema": schema, "strict": True}},
        tools=[WEATHER, {"type": "web_search_preview"}],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        max_output_tokens=50,
        temperature=0.2,
    )
    assert out.output_text == "Hello from chat!" and out.status == "completed"
    sent = fake_resp.seen("/chat/completions")[-1].body
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in JSON."},
        {"role": "user", "content": "hi"},
    ]
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert [t["function"]["name"] for t in sent["tools"]] == ["get_weather"]  # built-in tools stay at OpenAI
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert (sent["parallel_tool_calls"], sent["max_tokens"], sent["temperature"]) == (False, 50, 0.2)
    assert charged(user) == CHAT_QUOTA
