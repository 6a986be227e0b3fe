"""Responses API streams: the native stream passed through (usage and id read on the way), and a
chat completion stream turned into the Responses event sequence.

The chat side reads whatever the channel's own translator writes (OpenAI `chat.completion.chunk`
frames, whatever the provider spoke), so every chat adaptor serves /v1/responses unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.adaptors.base import RelayContext, StreamTranslator, Usage
from relay.adaptors.openai_stream import chunk_of
from relay.modes.responses_convert import (
    TOOL_ITEMS,
    call_item,
    custom_input,
    custom_item,
    custom_names,
    message_item,
    reasoning_item,
    response_object,
    responses_usage,
    tool_calls,
)
from relay.streaming import frame_event

FINAL_EVENTS = ("response.completed", "response.incomplete", "response.failed")


class NativeResponsesStream(StreamTranslator):
    """A Responses stream from a channel that speaks it: forwarded event by event."""

    def __init__(self, ctx: RelayContext, request: dict[str, Any]) -> None:
        super().__init__(ctx)
        self.request = request
        self.response_id = ""
        self.response: dict[str, Any] | None = None  # the final Response object
        self.tool_items: list[dict[str, Any]] = []  # built-in tool calls (web_search_call, …)

    def feed(self, event: str, data: bytes) -> list[bytes]:
        obj = chunk_of(data)
        if obj is None:
            return []
        kind = str(obj.get("type") or event)
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta") or (
            kind.startswith("response.reasoning") and kind.endswith(".delta")
        ):
            delta = obj.get("delta")
            if isinstance(delta, str) and delta:
                self.text_parts.append(delta)
                self.first_output = True
        elif kind == "response.output_item.added":
            item = obj.get("item") or {}
            if item.get("type") == "function_call":
                self.tool_calls += 1
                self.text_parts.append(str(item.get("name") or ""))
        elif kind == "response.output_item.done":
            item = obj.get("item") or {}
            if item.get("type") in TOOL_ITEMS:
                self.tool_items.append(item)
                # billed with the tokens when the stream settles (relay/metering/charge.py)
                self.ctx.extra["tool_calls"] = tool_calls(self.request, self.tool_items)
        response = obj.get("response")
        if isinstance(response, dict):
            self.response_id = self.response_id or str(response.get("id") or "")
            if kind in FINAL_EVENTS:
                self.response = response
                usage = responses_usage(response.get("usage"))
                if usage is not None:
                    self.usage = usage
        return [frame_event(kind, data)]

    def finish(self) -> list[bytes]:
        return []


class ChatToResponsesStream(StreamTranslator):
    """Chat completion chunks (as the channel's translator writes them) → Responses events."""

    def __init__(
        self, ctx: RelayContext, inner: StreamTranslator, request: dict[str, Any], response_id: str
    ) -> None:
        super().__init__(ctx)
        self.inner = inner
        self.text_parts = inner.text_parts  # what a disconnect is billed from
        self.request = request
        self.response_id = response_id
        self.seq = 0
        self.started = False
        self.output: list[dict[str, Any]] = []  # items in output order, built as deltas arrive
        self.open: dict[int, dict[str, Any]] = {}  # output index → item still streaming
        self.text_index: int | None = None
        self.reasoning_index: int | None = None
        self.calls: dict[int, int] = {}  # chat tool index → output index
        self.custom = custom_names(request)  # free-text tools, called through a one-string function
        self.custom_args: dict[int, str] = {}  # output index → a custom call's JSON arguments so far
        self.incomplete = False
        self.response: dict[str, Any] | None = None

    # -- events ------------------------------------------------------------------------------
    def _ev(self, kind: str, payload: dict[str, Any]) -> bytes:
        body = {"type": kind, "sequence_number": self.seq, **payload}
        self.seq += 1
        return frame_event(kind, orjson.dumps(body))

    def _snapshot(self, status: str, usage: Usage | None = None) -> dict[str, Any]:
        return response_object(
            self.request, self.response_id, self.ctx.origin_model, self.output, usage, status
        )

    def _start(self) -> list[bytes]:
        self.started = True
        snap = self._snapshot("in_progress")
        return [
            self._ev("response.created", {"response": snap}),
            self._ev("response.in_progress", {"response": snap}),
        ]

    def _add(self, item: dict[str, Any]) -> tuple[int, list[bytes]]:
        index = len(self.output)
        self.output.append(item)
        self.open[index] = item
        return index, [self._ev("response.output_item.added", {"output_index": index, "item": dict(item)})]

    # -- feeding -----------------------------------------------------------------------------
    def feed(self, event: str, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        for piece in self.inner.feed(event, data):
            out += self._chat_frame(piece)
        self.usage = self.inner.usage
        self.tool_calls = self.inner.tool_calls
        self.first_output = self.first_output or self.inner.first_output
        return out

    def _chat_frame(self, piece: bytes) -> list[bytes]:
        out: list[bytes] = []
        for line in piece.split(b"\n"):
            if not line.startswith(b"data:"):
                continue
            chunk = chunk_of(line[5:].strip())
            if chunk is None:
                continue
            if "error" in chunk and "choices" not in chunk:
                err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
                out.append(
                    self._ev(
                        "error",
                        {"code": err.get("code"), "message": str(err.get("message") or ""), "param": None},
                    )
                )
                continue
            if not self.started:
                out += self._start()
            for choice in chunk.get("choices") or []:
                out += self._delta(choice.get("delta") or {})
                if choice.get("finish_reason") == "length":
                    self.incomplete = True
        return out

    def _delta(self, delta: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        reasoning = delta.get("reasoning_content") or delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            if self.reasoning_index is None:
                self.reasoning_index, added = self._add(reasoning_item("") | {"summary": []})
                out += added
                out.append(
                    self._ev(
                        "response.reasoning_summary_part.added",
                        self._summary_ref({"type": "summary_text", "text": ""}),
                    )
                )
                self.output[self.reasoning_index]["summary"] = [{"type": "summary_text", "text": ""}]
            part = self.output[self.reasoning_index]["summary"][0]
            part["text"] += reasoning
            ref = self._summary_ref(None)
            out.append(self._ev("response.reasoning_summary_text.delta", {**ref, "delta": reasoning}))
        content = delta.get("content")
        if isinstance(content, str) and content:
            out += self._close(self.reasoning_index)
            if self.text_index is None:
                self.text_index, added = self._add(message_item("", status="in_progress") | {"content": []})
                out += added
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                item = self.output[self.text_index]
                item["content"] = [part]
                out.append(self._ev("response.content_part.added", {**self._text_ref(), "part": dict(part)}))
            self.output[self.text_index]["content"][0]["text"] += content
            out.append(
                self._ev("response.output_text.delta", {**self._text_ref(), "delta": content, "logprobs": []})
            )
        for call in delta.get("tool_calls") or []:
            out += self._tool_delta(call)
        return out

    def _summary_ref(self, part: dict[str, Any] | None) -> dict[str, Any]:
        assert self.reasoning_index is not None
        ref: dict[str, Any] = {
            "item_id": self.output[self.reasoning_index]["id"],
            "output_index": self.reasoning_index,
            "summary_index": 0,
        }
        if part is not None:
            ref["part"] = part
        return ref

    def _text_ref(self) -> dict[str, Any]:
        assert self.text_index is not None
        return {
            "item_id": self.output[self.text_index]["id"],
            "output_index": self.text_index,
            "content_index": 0,
        }

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        if index not in self.calls:
            out += self._close(self.reasoning_index) + self._close(self.text_index)
            name = fn.get("name") or ""
            if name in self.custom:  # its text is known whole only when the JSON arguments end
                item = custom_item(call.get("id") or "", name, "", status="in_progress")
                self.custom_args[len(self.output)] = ""
            else:
                item = call_item(call.get("id") or "", name, "", status="in_progress")
            self.calls[index], added = self._add(item)
            out += added
        position = self.calls[index]
        item = self.output[position]
        if fn.get("name") and not item["name"]:
            item["name"] = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str) and args and position in self.custom_args:
            self.custom_args[position] += args
        elif isinstance(args, str) and args:
            item["arguments"] += args
            payload = {"item_id": item["id"], "output_index": position, "delta": args}
            out.append(self._ev("response.function_call_arguments.delta", payload))
        return out

    def _close(self, index: int | None) -> list[bytes]:
        if index is None or index not in self.open:
            return []
        item = self.open.pop(index)
        out: list[bytes] = []
        kind = item["type"]
        if kind == "message":
            part = item["content"][0]
            ref = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(self._ev("response.output_text.done", {**ref, "text": part["text"], "logprobs": []}))
            out.append(self._ev("response.content_part.done", {**ref, "part": dict(part)}))
        elif kind == "function_call":
            if not item["arguments"]:
                item["arguments"] = "{}"
            payload = {
                "item_id": item["id"],
                "output_index": index,
                "name": item["name"],
                "arguments": item["arguments"],
            }
            out.append(self._ev("response.function_call_arguments.done", payload))
        elif kind == "custom_tool_call":
            item["input"] = custom_input(self.custom_args.pop(index, ""))
            ref = {"item_id": item["id"], "output_index": index}
            out.append(self._ev("response.custom_tool_call_input.delta", {**ref, "delta": item["input"]}))
            out.append(self._ev("response.custom_tool_call_input.done", {**ref, "input": item["input"]}))
        elif kind == "reasoning" and item["summary"]:
            part = item["summary"][0]
            ref = {"item_id": item["id"], "output_index": index, "summary_index": 0}
            out.append(self._ev("response.reasoning_summary_text.done", {**ref, "text": part["text"]}))
            out.append(self._ev("response.reasoning_summary_part.done", {**ref, "part": dict(part)}))
        item["status"] = "completed"
        if kind == "reasoning":
            item.pop("status")
        out.append(self._ev("response.output_item.done", {"output_index": index, "item": item}))
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        for piece in self.inner.finish():
            out += self._chat_frame(piece)
        if not self.started:
            out += self._start()
        for index in sorted(self.open):
            out += self._close(index)
        usage: Usage | None = self.inner.usage or self.ctx.extra.get("final_usage")
        status = "incomplete" if self.incomplete else "completed"
        self.response = self._snapshot(status, usage)
        out.append(self._ev(f"response.{status}", {"response": self.response}))
        return out
