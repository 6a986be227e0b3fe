"""Free-text (custom) tools, such as Codex's apply_patch, on a channel the Responses API is converted
for: the tool reaches the chat provider as a function of one string, and its call comes back as a
custom_tool_call (whole and streamed), which a follow-up sends back as the same call."""

from __future__ import annotations

import json

import openai
import pytest

from tests.conftest import live, make_channel, make_token, make_user
from tests.fakes.anthropic_upstream import PATCH, FakeAnthropic

pytestmark = [live, pytest.mark.relay]

CLAUDE = "claude-3-5-sonnet-20241022"
APPLY_PATCH = {
    "type": "custom",
    "name": "apply_patch",
    "description": "Edit files with a patch.",
    "format": {"type": "grammar", "syntax": "lark", "definition": 'start: "*** Begin Patch" /(.|\\n)*/'},
}


@pytest.fixture(scope="module")
def fake_claude() -> FakeAnthropic:
    return FakeAnthropic().start()


def test_custom_tool_round_trip_on_claude(gateway, fake_claude):
    make_channel(fake_claude.base_url, key="patch", type=14, models=CLAUDE, name="claude-patch")
    token = make_token(make_user("custom-tools"))
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)

    out = client.responses.create(model=CLAUDE, input="add hello.txt", tools=[APPLY_PATCH])
    call = next(item for item in out.output if item.type == "custom_tool_call")
    assert (call.name, call.input, call.call_id) == ("apply_patch", PATCH, "toolu_02")
    tool = fake_claude.requests_for("patch")[-1].body["tools"][0]
    assert tool["name"] == "apply_patch" and tool["input_schema"]["required"] == ["input"]
    assert "grammar" in tool["description"] and "*** Begin Patch" in tool["description"]

    with client.responses.stream(model=CLAUDE, input="add hello.txt", tools=[APPLY_PATCH]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    kinds = [e.type for e in events]
    assert "response.function_call_arguments.delta" not in kinds
    done = next(e for e in events if e.type == "response.custom_tool_call_input.done")
    assert done.input == PATCH
    assert final.output[0].type == "custom_tool_call" and final.output[0].input == PATCH

    follow = [
        {"role": "user", "content": "add hello.txt"},
        {"type": "custom_tool_call", "call_id": call.call_id, "name": "apply_patch", "input": PATCH},
        {"type": "custom_tool_call_output", "call_id": call.call_id, "output": "Done!"},
    ]
    client.responses.create(model=CLAUDE, input=follow, tools=[APPLY_PATCH])
    sent = fake_claude.requests_for("patch")[-1].body["messages"]
    assert sent[1]["content"] == [
        {"type": "tool_use", "id": "toolu_02", "name": "apply_patch", "input": {"input": PATCH}}
    ]
    assert json.dumps(sent[2]["content"][0]["content"]) == '"Done!"'
