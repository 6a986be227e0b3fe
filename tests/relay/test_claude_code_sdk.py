"""/v1/messages the way Claude Code uses it, driven by the official anthropic SDK through the real
gateway: tool round trips, thinking, cache billing and count_tokens, on a Claude channel (native)
and on OpenAI-type channels (converted to chat completions and back)."""

from __future__ import annotations

import json

import anthropic
import pytest

from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.agent_upstream import SIGNATURE, THOUGHT, ScriptedClaude, ScriptedOpenAI

pytestmark = [live, pytest.mark.relay]

MODEL = "claude-3-7-sonnet-20250219"  # ratio 1.5, completion ratio 5, cache ratio 0.1, cache creation 1.25
# input 100, cache reads 60, cache writes 30, output 20: (100 + 60×0.1 + 30×1.25 + 20×5) × 1.5 = 365.25
CLAUDE_QUOTA = 365
# prompt 160 of which 60 cached, output 20: (100 + 60×0.1 + 20×5) × 1.5 = 309
OPENAI_QUOTA = 309
START = 10_000_000
BASH = {
    "name": "Bash",
    "description": "Run a shell command",
    "input_schema": {
        "type": "object",
        "properties": {"command": {"type": "string"}},
        "required": ["command"],
    },
}
CACHED = {"type": "ephemeral"}


@pytest.fixture(scope="module")
def claude_up() -> ScriptedClaude:
    return ScriptedClaude().start()


@pytest.fixture(scope="module")
def openai_up() -> ScriptedOpenAI:
    return ScriptedOpenAI().start()


def client_for(gateway, name: str) -> tuple[anthropic.Anthropic, object]:
    user = make_user(name, quota=START)
    token = make_token(user, name=f"{name}-key")
    return anthropic.Anthropic(base_url=gateway.url, api_key=f"sk-{token.key}", max_retries=0), user


def spent(user) -> int:
    settle()
    user.refresh_from_db()
    return START - user.quota


def charges(user) -> list[int]:
    settle()
    return sorted(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True))


def sent_by(fake, key_header: str, key: str) -> list:
    return [
        r for r in fake.messages_requests() if r.headers.get(key_header, "").removeprefix("Bearer ") == key
    ]


def first_turn() -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": "Run it", "cache_control": CACHED}]}]


def second_turn(tool_use: dict, result: str = "tool-ran-fine") -> list[dict]:
    return [
        *first_turn(),
        {"role": "assistant", "content": [tool_use]},
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": tool_use["id"],
                    "content": result,
                    "cache_control": CACHED,
                }
            ],
        },
    ]


SYSTEM = [
    {"type": "text", "text": "You are a coding agent."},
    {"type": "text", "text": "Be terse.", "cache_control": CACHED},
]


# -- Claude channel: everything passes through ---------------------------------------------------------
def test_native_tool_round_trip_thinking_and_cache_billing(gateway, claude_up):
    make_channel(claude_up.base_url, key="native-tools", type=14, models=MODEL)
    client, user = client_for(gateway, "cc1")
    thinking = {"type": "enabled", "budget_tokens": 2048}
    beta = "claude-code-20250219,interleaved-thinking-2025-05-14"
    first = client.beta.messages.create(
        model=MODEL,
        max_tokens=4096,
        system=SYSTEM,
        tools=[BASH],
        thinking=thinking,
        messages=first_turn(),
        metadata={"user_id": "device-1"},
        betas=beta.split(","),
        extra_query={"beta": "true"},  # as Claude Code asks
    )
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.content[0].signature == SIGNATURE and first.stop_reason == "tool_use"
    call = first.content[1]
    assert call.name == "Bash" and call.input["command"] == "echo tool-ran-fine"
    assert first.usage.cache_read_input_tokens == 60 and first.usage.cache_creation_input_tokens == 30
    # second turn, streamed: the thinking block (with its signature) and the tool result go back as sent
    history = second_turn(call.model_dump())
    history[1]["content"].insert(0, first.content[0].model_dump())
    with client.beta.messages.stream(
        model=MODEL,
        max_tokens=4096,
        system=SYSTEM,
        tools=[BASH],
        thinking=thinking,
        messages=history,
        betas=beta.split(","),
    ) as stream:
        final = stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text"]
    assert final.content[1].text == "Tool said: tool-ran-fine"
    assert final.usage.cache_read_input_tokens == 60
    one, two = sent_by(claude_up, "x-api-key", "native-tools")
    assert one.query == "beta=true" and two.query == "" and one.headers["anthropic-beta"] == beta
    assert one.headers["anthropic-version"] == client.default_headers["anthropic-version"]  # the client's own
    assert (
        one.body["system"] == SYSTEM
        and one.body["thinking"] == thinking
        and one.body["metadata"] == {"user_id": "device-1"}
    )
    assert one.body["messages"] == first_turn()
    assert two.body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": THOUGHT,
        "signature": SIGNATURE,
    }
    assert two.body["messages"][2]["content"][0]["cache_control"] == CACHED and two.body["stream"] is True
    assert charges(user) == [CLAUDE_QUOTA, CLAUDE_QUOTA]
    log = Log.objects.filter(user_id=user.pk).first()
    assert (log.prompt_tokens, log.completion_tokens) == (190, 20)
    other = json.loads(log.other)
    assert other["cache_tokens"] == 60 and other["cache_creation_tokens"] == 30


def test_long_context_model_name(gateway, claude_up):
    make_channel(claude_up.base_url, key="native-1m", type=14, models=MODEL)
    client, user = client_for(gateway, "cc2")
    msg = client.messages.create(
        model=f"{MODEL}[1m]",
        max_tokens=100,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"anthropic-beta": "claude-code-20250219"},
    )
    assert msg.content[0].text == "ok"
    sent = sent_by(claude_up, "x-api-key", "native-1m")[-1]
    assert sent.body["model"] == MODEL
    assert sent.headers["anthropic-beta"] == "claude-code-20250219,context-1m-2025-08-07"
    assert charges(user) == [CLAUDE_QUOTA]


# -- OpenAI-type channels: converted both ways --------------------------------------------------------
def test_converted_tool_round_trip_with_cache_billing(gateway, openai_up):
    make_channel(openai_up.base_url, key="oa-tools", models=MODEL)
    client, user = client_for(gateway, "cc5")
    first = client.messages.create(
        model=MODEL, max_tokens=1024, system=SYSTEM, tools=[BASH], messages=first_turn()
    )
    assert first.stop_reason == "tool_use" and [b.type for b in first.content] == ["tool_use"]
    call = first.content[0]
    assert call.name == "Bash" and call.input == openai_up.tool_input and call.id.startswith("call_")
    assert (first.usage.input_tokens, first.usage.cache_read_input_tokens, first.usage.output_tokens) == (
        100,
        60,
        20,
    )
    # streamed second turn: the tool result becomes a tool message answering the assistant's tool call
    events = []
    with client.messages.stream(
        model=MODEL, max_tokens=1024, system=SYSTEM, tools=[BASH], messages=second_turn(call.model_dump())
    ) as stream:
        for event in stream:
            events.append(event.type)
        final = stream.get_final_message()
    assert final.content[0].text == "Tool said: tool-ran-fine" and final.stop_reason == "end_turn"
    assert final.usage.cache_read_input_tokens == 60 and final.usage.output_tokens == 20
    assert events[0] == "message_start" and events[-1] == "message_stop"
    one, two = sent_by(openai_up, "Authorization", "oa-tools")
    assert one.path == "/v1/chat/completions"
    assert one.body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "Bash",
                "description": BASH["description"],
                "parameters": BASH["input_schema"],
            },
        }
    ]
    # type 1 (OpenAI) takes no cache_control: markers are dropped, text stays plain
    assert one.body["messages"] == [
        {"role": "system", "content": "You are a coding agent.\nBe terse."},
        {"role": "user", "content": "Run it"},
    ]
    assert two.body["messages"][2:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "Bash", "arguments": json.dumps(call.input, separators=(",", ":"))},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "tool-ran-fine"},
    ]
    assert two.body["stream_options"] == {"include_usage": True}
    assert charges(user) == [OPENAI_QUOTA, OPENAI_QUOTA]


def test_converted_stream_tool_call_becomes_input_json_deltas(gateway, openai_up):
    make_channel(openai_up.base_url, key="oa-stream", models=MODEL)
    client, user = client_for(gateway, "cc6")
    deltas = []
    with client.messages.stream(model=MODEL, max_tokens=1024, tools=[BASH], messages=first_turn()) as stream:
        for event in stream:
            if event.type == "content_block_delta" and event.delta.type == "input_json_delta":
                deltas.append(event.delta.partial_json)
        final = stream.get_final_message()
    assert len(deltas) == 2 and json.loads("".join(deltas)) == openai_up.tool_input
    assert final.stop_reason == "tool_use" and final.content[0].input == openai_up.tool_input
    assert charges(user) == [OPENAI_QUOTA]


def test_converted_thinking(gateway, openai_up):
    make_channel(openai_up.base_url, key="oa-think", models=MODEL)
    client, user = client_for(gateway, "cc7")
    thinking = {"type": "enabled", "budget_tokens": 20000}
    msg = client.messages.create(
        model=MODEL, max_tokens=21000, thinking=thinking, messages=[{"role": "user", "content": "hi"}]
    )
    assert [b.type for b in msg.content] == ["thinking", "text"] and msg.content[0].thinking == THOUGHT
    with client.messages.stream(
        model=MODEL,
        max_tokens=21000,
        thinking={"type": "adaptive"},
        messages=[{"role": "user", "content": "hi"}],
        extra_body={"output_config": {"effort": "low"}},
    ) as stream:
        kinds = [e.delta.type for e in stream if e.type == "content_block_delta"]
        final = stream.get_final_message()
    assert kinds[0] == "thinking_delta" and final.content[0].thinking == THOUGHT
    assert final.content[1].text == "ok"
    # thinking blocks sent back ride along as the assistant turn's reasoning_content
    client.messages.create(
        model=MODEL,
        max_tokens=21000,
        thinking=thinking,
        messages=[
            {"role": "user", "content": "hi"},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": THOUGHT, "signature": ""},
                    {"type": "text", "text": "ok"},
                ],
            },
            {"role": "user", "content": "again"},
        ],
    )
    one, two, three = sent_by(openai_up, "Authorization", "oa-think")
    assert one.body["reasoning_effort"] == "high" and "thinking" not in one.body
    assert two.body["reasoning_effort"] == "low"
    assert three.body["messages"][1] == {"role": "assistant", "content": "ok", "reasoning_content": THOUGHT}
    assert charges(user) == [OPENAI_QUOTA] * 3


def test_converted_errors_in_claude_shape_and_free(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="status-400", models=MODEL)
    client, user = client_for(gateway, "cc12")
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.create(model=MODEL, max_tokens=100, tools=[BASH], messages=first_turn())
    assert (
        exc.value.body["type"] == "error" and "fake upstream says 400" in exc.value.body["error"]["message"]
    )
    with (
        pytest.raises(anthropic.BadRequestError),
        client.messages.stream(model=MODEL, max_tokens=100, messages=first_turn()) as stream,
    ):
        list(stream)
    assert spent(user) == 0 and charges(user) == []


@pytest.fixture(scope="module")
def openrouter_up() -> ScriptedOpenAI:
    return ScriptedOpenAI(cache_writes=True).start()


def test_cache_control_kept_for_openrouter(gateway, openrouter_up):
    """OpenRouter takes the markers and reports cache reads and writes: both billed at their
    ratios, both back in Claude's usage."""
    openai_up = openrouter_up
    make_channel(openai_up.base_url, key="or-cache", type=20, models=MODEL)
    client, user = client_for(gateway, "cc8")
    call = {"type": "tool_use", "id": "toolu_x", "name": "Bash", "input": {"command": "ls"}}
    msg = client.messages.create(
        model=MODEL,
        max_tokens=1024,
        system=SYSTEM,
        tools=[BASH],
        messages=second_turn(call, "a.txt"),
        thinking={"type": "enabled", "budget_tokens": 3000},
    )
    sent = sent_by(openai_up, "Authorization", "or-cache")[-1].body
    assert sent["messages"][0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "You are a coding agent."},
            {"type": "text", "text": "Be terse.", "cache_control": CACHED},
        ],
    }
    assert sent["messages"][1] == {
        "role": "user",
        "content": [{"type": "text", "text": "Run it", "cache_control": CACHED}],
    }
    assert sent["messages"][3] == {
        "role": "tool",
        "tool_call_id": "toolu_x",
        "content": [{"type": "text", "text": "a.txt", "cache_control": CACHED}],
    }
    assert sent["reasoning"] == {"max_tokens": 3000} and "reasoning_effort" not in sent
    usage = msg.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (
        100,
        60,
        30,
    )
    assert charges(user) == [CLAUDE_QUOTA]  # the same bill as Claude's own usage


def test_openai_chat_cache_markers_reach_claude(gateway, claude_up):
    """The other way: an OpenAI-format client marking cache breakpoints (OpenRouter style) on a
    Claude channel; Claude's cache reads come back as cached_tokens and are billed at their ratio."""
    import openai

    make_channel(claude_up.base_url, key="chat-cache", type=14, models=MODEL)
    user = make_user("cc9", quota=START)
    token = make_token(user, name="cc9-key")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    out = client.chat.completions.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "Long rules.", "cache_control": CACHED}]},
            {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": CACHED}]},
        ],
    )
    assert out.choices[0].message.content == "ok"
    assert out.usage.prompt_tokens == 190 and out.usage.prompt_tokens_details.cached_tokens == 60
    sent = sent_by(claude_up, "x-api-key", "chat-cache")[-1].body
    assert sent["system"] == [{"type": "text", "text": "Long rules.", "cache_control": CACHED}]
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": CACHED}]}
    ]
    assert charges(user) == [CLAUDE_QUOTA]


# -- the conversion itself, for what the round trips above do not send ---------------------------------
def test_conversion_of_the_rest_of_claude_codes_shapes():
    from relay.modes.claude_convert import claude_to_openai_request

    png = {"type": "base64", "media_type": "image/png", "data": "AAAA"}
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "tools": [BASH, {"type": "web_search_20250305", "name": "web_search", "max_uses": 3}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "thinking": {"type": "disabled"},
        "context_management": {"edits": []},
        "metadata": {"user_id": "x"},
        "messages": [
            {"role": "user", "content": "look"},
            {
                "role": "assistant",
                "content": [
                    {"type": "redacted_thinking", "data": "opaque"},
                    {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "a.png"}},
                    {"type": "tool_use", "id": "t2", "name": "Bash", "input": {"command": "false"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "t1",
                        "content": [
                            {"type": "image", "source": png},
                            {
                                "type": "document",
                                "title": "a.pdf",
                                "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBE"},
                            },
                        ],
                    },
                    {"type": "tool_result", "tool_use_id": "t2", "content": "exit 1", "is_error": True},
                    {"type": "text", "text": "and?"},
                ],
            },
            {"role": "system", "content": [{"type": "text", "text": "Mid-conversation note."}]},
        ],
    }
    out = claude_to_openai_request(body, "gpt-x")
    assert [t["function"]["name"] for t in out["tools"]] == ["Bash"]  # server tools have no OpenAI form
    assert out["tool_choice"] == "auto" and out["parallel_tool_calls"] is False
    assert "reasoning_effort" not in out and "context_management" not in out and "metadata" not in out
    assert out["messages"][1]["tool_calls"][0]["id"] == "t1" and "reasoning_content" not in out["messages"][1]
    assert out["messages"][2:] == [
        {"role": "tool", "tool_call_id": "t1", "content": "(attachments: in the next message)"},
        {"role": "tool", "tool_call_id": "t2", "content": "Error: exit 1"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "(attachments returned by the tool)"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                {
                    "type": "file",
                    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBE"},
                },
                {"type": "text", "text": "and?"},
            ],
        },
        {"role": "system", "content": "Mid-conversation note."},
    ]
