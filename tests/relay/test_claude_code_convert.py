"""The OpenAI-stream → Claude-events translator on what providers send besides OpenAI's own shape."""

from __future__ import annotations

import orjson

from relay.adaptors.base import RelayContext
from relay.modes.claude_convert import OpenAIToClaudeStream, openai_to_claude_response
from relay.state import ChannelInfo

MODEL = "claude-3-7-sonnet-20250219"


def translate(chunks: list[dict]) -> list[tuple[str, dict]]:
    channel = ChannelInfo(1, 1, "c", "k", 1, "", "", "", (), (), 0, 0, {}, {}, {}, {}, True, "")
    ctx = RelayContext("claude", channel, MODEL, MODEL, "/v1/messages", "", {}, b"", {})
    tr = OpenAIToClaudeStream(ctx, 12)
    frames = [f for c in chunks for f in tr.feed("", orjson.dumps(c))] + tr.finish()
    return [(f.split(b"\n")[0][7:].decode(), orjson.loads(f.split(b"\n")[1][6:])) for f in frames]


def call(cid: str, name: str, args: str) -> dict:
    return {"id": cid, "type": "function", "function": {"name": name, "arguments": args}}


def test_whole_tool_calls_without_index_are_separate_blocks():
    events = translate(
        [
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {"tool_calls": [call("a1", "Read", '{"file_path":"x"}')]}}],
            },
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {"tool_calls": [call("a2", "Bash", '{"command":"ls"}')]}}],
            },
            {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ]
    )
    starts = [e["content_block"] for kind, e in events if kind == "content_block_start"]
    assert [(b["id"], b["name"]) for b in starts] == [("a1", "Read"), ("a2", "Bash")]
    deltas = [(e["index"], e["delta"]["partial_json"]) for kind, e in events if kind == "content_block_delta"]
    assert deltas == [(0, '{"file_path":"x"}'), (1, '{"command":"ls"}')]
    assert [k for k, _ in events].count("content_block_stop") == 2


def test_tool_call_without_id_gets_one():
    events = translate(
        [
            {
                "id": "c",
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [{"index": 0, "function": {"name": "Bash", "arguments": "{}"}}]
                        },
                    }
                ],
            }
        ]
    )
    block = next(e["content_block"] for kind, e in events if kind == "content_block_start")
    assert block["id"].startswith("toolu_") and len(block["id"]) > 6
    msg = openai_to_claude_response(
        {
            "choices": [
                {
                    "message": {"tool_calls": [{"function": {"name": "Bash", "arguments": "{}"}}]},
                    "finish_reason": "tool_calls",
                }
            ]
        },
        MODEL,
        None,
    )
    assert msg["content"][0]["id"].startswith("toolu_") and msg["stop_reason"] == "tool_use"


def test_reasoning_field_and_usage_with_cache():
    events = translate(
        [
            {"id": "c", "choices": [{"index": 0, "delta": {"reasoning": "think"}}]},
            {"id": "c", "choices": [{"index": 0, "delta": {"content": "done"}, "finish_reason": "stop"}]},
            {
                "id": "c",
                "choices": [],
                "usage": {
                    "prompt_tokens": 160,
                    "completion_tokens": 20,
                    "prompt_tokens_details": {"cached_tokens": 60},
                },
            },
        ]
    )
    assert events[1][1]["content_block"]["type"] == "thinking"
    final = next(e for kind, e in events if kind == "message_delta")
    assert final["usage"] == {
        "input_tokens": 100,
        "output_tokens": 20,
        "cache_read_input_tokens": 60,
        "cache_creation_input_tokens": 0,
    }
    assert final["delta"]["stop_reason"] == "end_turn"
