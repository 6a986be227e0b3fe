"""Claude Messages ⇄ OpenAI chat, for /v1/messages requests that land on an OpenAI-type channel.

A system block list is joined by its texts (kept as blocks where the provider takes cache_control
markers), tool results become tool messages right after the assistant's tool calls, thinking
settings become a reasoning effort, and every upstream chunk goes through the converter (no OpenAI
frame leaks into the Claude stream). A tool call's id is kept so that the client's tool_result
answers it; one is made up when the provider sent none.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from relay.adaptors.base import RelayContext, StreamTranslator, Usage
from relay.adaptors.openai_stream import chunk_of, usage_from
from relay.streaming import frame_event

FINISH_TO_STOP = {
    "stop": "end_turn",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "length": "max_tokens",
    "max_tokens": "max_tokens",
    "stop_sequence": "stop_sequence",
}


def _blocks_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"
        )
    return ""


def _image_part(block: dict[str, Any]) -> dict[str, Any]:
    src = block.get("source") or {}
    url = (
        src.get("url")
        if src.get("type") == "url"
        else f"data:{src.get('media_type', '')};base64,{src.get('data', '')}"
    )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: dict[str, Any]) -> dict[str, Any] | None:
    """A document block (a PDF the Read tool returned, a pasted text) as a chat content part."""
    src = block.get("source") or {}
    if src.get("type") == "text":
        return {"type": "text", "text": str(src.get("data") or "")}
    if src.get("type") == "base64":
        data = f"data:{src.get('media_type', 'application/pdf')};base64,{src.get('data', '')}"
        name = str(block.get("title") or "document.pdf")
        return {"type": "file", "file": {"filename": name, "file_data": data}}
    return None


def _text_part(block: dict[str, Any], caching: bool) -> dict[str, Any]:
    part: dict[str, Any] = {"type": "text", "text": block.get("text", "")}
    if caching and isinstance(block.get("cache_control"), dict):
        part["cache_control"] = block["cache_control"]
    return part


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]]:
    """Plain text when nothing but unmarked text: the shape every OpenAI-type provider accepts."""
    if all(p["type"] == "text" and "cache_control" not in p for p in parts):
        return "".join(p["text"] for p in parts)
    return parts


def reasoning_effort(body: dict[str, Any]) -> str:
    """Claude's thinking settings as an OpenAI reasoning effort ("" when thinking is off)."""
    thinking = body.get("thinking")
    effort = (
        (body.get("output_config") or {}).get("effort")
        if isinstance(body.get("output_config"), dict)
        else None
    )
    if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "adaptive"):
        return ""
    if effort in ("low", "medium", "high"):
        return str(effort)
    if effort in ("max", "xhigh"):
        return "high"
    budget = int(thinking.get("budget_tokens") or 0)
    if thinking.get("type") == "adaptive" or not budget:
        return "medium"
    return "low" if budget < 4096 else "medium" if budget < 16384 else "high"


def _tool_result(block: dict[str, Any], caching: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A tool message, and the images (and documents) the result carried: a tool message holds
    text only."""
    result = block.get("content")
    images: list[dict[str, Any]] = []
    if isinstance(result, list):
        texts = []
        for part in result:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                texts.append(part.get("text", ""))
            elif part.get("type") == "image":
                images.append(_image_part(part))
            elif part.get("type") == "document" and (doc := _document_part(part)) is not None:
                images.append(doc)
        text = "\n".join(texts)
    else:
        text = str(result) if result is not None else ""
    if not text and images:  # providers refuse an empty tool message
        text = "(attachments: in the next message)"
    if block.get("is_error") and not text.startswith("Error"):
        text = f"Error: {text}"
    msg: dict[str, Any] = {"role": "tool", "tool_call_id": block.get("tool_use_id", "")}
    if caching and isinstance(block.get("cache_control"), dict):
        msg["content"] = [{"type": "text", "text": text, "cache_control": block["cache_control"]}]
    else:
        msg["content"] = text
    return msg, images


def _tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    """Client tools as functions; Anthropic's server tools (web search, code execution…) have no
    OpenAI equivalent and are left out."""
    out = []
    for t in body.get("tools") or []:
        if not isinstance(t, dict) or not t.get("name") or t.get("type") not in (None, "custom"):
            continue
        out.append(
            {
                "type": "function",
                "function": {
                    "name": t["name"],
                    "description": t.get("description", ""),
                    "parameters": t.get("input_schema") or {"type": "object", "properties": {}},
                },
            }
        )
    return out


def _message(msg: dict[str, Any], caching: bool) -> list[dict[str, Any]]:
    """One Claude message as OpenAI messages: tool results first (each its own tool message),
    then the text/images, with the assistant's tool_use blocks as tool_calls."""
    role = msg.get("role") or "user"
    content = msg.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    calls: list[dict[str, Any]] = []
    reasoning: list[str] = []
    result_images: list[dict[str, Any]] = []
    for block in content or []:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            parts.append(_text_part(block, caching))
        elif kind == "image":
            parts.append(_image_part(block))
        elif kind == "document" and (doc := _document_part(block)) is not None:
            parts.append(doc)
        elif kind == "thinking" and role == "assistant":
            reasoning.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {
                        "name": block.get("name", ""),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        elif kind == "tool_result":
            tool_msg, images = _tool_result(block, caching)
            out.append(tool_msg)
            result_images += images
    if result_images:
        parts = [{"type": "text", "text": "(attachments returned by the tool)"}, *result_images, *parts]
    if role == "assistant":
        if calls or parts or reasoning:
            text = "".join(p.get("text", "") for p in parts if p["type"] == "text")
            assistant: dict[str, Any] = {"role": "assistant", "content": text or None}
            if calls:
                assistant["tool_calls"] = calls
            if reasoning:  # DeepSeek-style providers want the reasoning of a tool-call turn back
                assistant["reasoning_content"] = "".join(reasoning)
            out.append(assistant)
    elif parts:
        out.append({"role": role, "content": _content(parts)})
    return out


def claude_to_openai_request(
    body: dict[str, Any], model: str, caching: bool = False, reasoning_object: bool = False
) -> dict[str, Any]:
    """`caching`: the provider takes Anthropic cache_control markers on content parts, so they stay;
    `reasoning_object`: it wants thinking as OpenRouter's `reasoning` object, not reasoning_effort."""
    out: dict[str, Any] = {"model": model}
    for key in ("max_tokens", "temperature", "top_p", "stream"):
        if body.get(key) is not None:
            out[key] = body[key]
    stops = body.get("stop_sequences") or []
    if len(stops) == 1:
        out["stop"] = stops[0]
    elif stops:
        out["stop"] = list(stops)
    tools = _tools(body)
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "any":
            out["tool_choice"] = "required"
        elif kind in ("auto", "none"):
            out["tool_choice"] = kind
        elif kind == "tool" and choice.get("name"):
            out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
        if choice.get("disable_parallel_tool_use") and tools:
            out["parallel_tool_calls"] = False
    effort = reasoning_effort(body)
    if effort and reasoning_object:
        budget = int((body.get("thinking") or {}).get("budget_tokens") or 0)
        out["reasoning"] = {"max_tokens": budget} if budget else {"effort": effort}
    elif effort:
        out["reasoning_effort"] = effort
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if isinstance(system, list) and caching:
        parts = [_text_part(b, caching) for b in system if isinstance(b, dict) and b.get("type") == "text"]
        if parts:
            messages.append({"role": "system", "content": _content(parts)})
    elif _blocks_text(system):
        messages.append({"role": "system", "content": _blocks_text(system)})
    for msg in body.get("messages") or []:
        if isinstance(msg, dict):
            messages += _message(msg, caching)
    out["messages"] = messages
    return out


def tool_use_id(n: int) -> str:
    """For a provider's tool call without an id: the client answers the call by this id."""
    return f"toolu_{time.time_ns():x}{n}"


def claude_usage_body(u: Usage | None) -> dict[str, int]:
    if u is None:
        return {"input_tokens": 0, "output_tokens": 0}
    return {
        "input_tokens": max(u.prompt_tokens - u.cached_tokens - u.cache_creation_tokens, 0),
        "output_tokens": u.completion_tokens,
        "cache_read_input_tokens": u.cached_tokens,
        "cache_creation_input_tokens": u.cache_creation_tokens,
    }


def openai_to_claude_response(data: dict[str, Any], model: str, usage: Usage | None) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    stop = "end_turn"
    for choice in data.get("choices") or []:
        msg = choice.get("message") or {}
        reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        if reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
        if msg.get("content"):
            content.append({"type": "text", "text": msg["content"]})
        for call in msg.get("tool_calls") or []:
            fn = call.get("function") or {}
            try:
                args = orjson.loads(fn.get("arguments") or "{}")
            except orjson.JSONDecodeError:
                args = {}
            content.append(
                {
                    "type": "tool_use",
                    "id": call.get("id") or tool_use_id(len(content)),
                    "name": fn.get("name", ""),
                    "input": args,
                }
            )
        reason = choice.get("finish_reason") or "stop"
        stop = FINISH_TO_STOP.get(reason, reason)
        break
    return {
        "id": data.get("id") or f"msg_{time.time_ns()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": claude_usage_body(usage),
    }


class OpenAIToClaudeStream(StreamTranslator):
    """OpenAI chunks → the full Claude event sequence (message_start … message_stop)."""

    def __init__(self, ctx: RelayContext, prompt_tokens: int) -> None:
        super().__init__(ctx)
        self.prompt_tokens = prompt_tokens
        self.started = False
        self.block: str | None = None  # text | thinking | tool_use
        self.index = -1
        self.tool_ids: dict[int, int] = {}  # OpenAI tool index → Claude block index
        self.call_ids: dict[int, str] = {}  # OpenAI tool index → its call id
        self.stop: str | None = None

    def _ev(self, kind: str, payload: dict[str, Any]) -> bytes:
        return frame_event(kind, orjson.dumps({"type": kind, **payload}))

    def _start(self, chunk: dict[str, Any]) -> list[bytes]:
        self.started = True
        message: dict[str, Any] = {
            "id": chunk.get("id") or f"msg_{time.time_ns()}",
            "type": "message",
            "role": "assistant",
            "model": self.ctx.origin_model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": self.prompt_tokens, "output_tokens": 0},
        }
        return [self._ev("message_start", {"message": message})]

    def _open(self, kind: str, block: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self.index += 1
        self.block = kind
        out.append(self._ev("content_block_start", {"index": self.index, "content_block": block}))
        return out

    def _close(self) -> list[bytes]:
        if self.block is None:
            return []
        self.block = None
        return [self._ev("content_block_stop", {"index": self.index})]

    def feed(self, event: str, data: bytes) -> list[bytes]:
        chunk = chunk_of(data)
        if chunk is None:
            return []
        out: list[bytes] = []
        if "error" in chunk and "choices" not in chunk:
            err = chunk["error"] if isinstance(chunk["error"], dict) else {"message": str(chunk["error"])}
            return [
                self._ev(
                    "error",
                    {
                        "error": {
                            "type": str(err.get("type") or "upstream_error"),
                            "message": str(err.get("message") or ""),
                        }
                    },
                )
            ]
        if not self.started:
            out += self._start(chunk)
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if reasoning:
                if self.block != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": ""})
                out.append(
                    self._ev(
                        "content_block_delta",
                        {"index": self.index, "delta": {"type": "thinking_delta", "thinking": reasoning}},
                    )
                )
                self.text_parts.append(reasoning)
            if delta.get("content"):
                if self.block != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out.append(
                    self._ev(
                        "content_block_delta",
                        {"index": self.index, "delta": {"type": "text_delta", "text": delta["content"]}},
                    )
                )
                self.text_parts.append(delta["content"])
            for call in delta.get("tool_calls") or []:
                ti = int(call.get("index") or 0)
                fn = call.get("function") or {}
                cid = str(call.get("id") or "")
                if cid and self.call_ids.get(ti, cid) != cid:
                    # whole calls sent without an index (some providers): a new id is a new call
                    ti = max(self.tool_ids) + 1
                if ti not in self.tool_ids:
                    out += self._open(
                        "tool_use",
                        {
                            "type": "tool_use",
                            "id": cid or tool_use_id(len(self.tool_ids)),
                            "name": fn.get("name", ""),
                            "input": {},
                        },
                    )
                    self.tool_ids[ti] = self.index
                    self.call_ids[ti] = cid
                    self.tool_calls = len(self.tool_ids)
                    self.text_parts.append(fn.get("name", ""))
                if fn.get("arguments"):
                    out.append(
                        self._ev(
                            "content_block_delta",
                            {
                                "index": self.tool_ids[ti],
                                "delta": {"type": "input_json_delta", "partial_json": fn["arguments"]},
                            },
                        )
                    )
                    self.text_parts.append(fn["arguments"])
            if choice.get("finish_reason"):
                reason = choice["finish_reason"]
                self.stop = FINISH_TO_STOP.get(reason, reason)
        if self.text_parts:
            self.first_output = True
        return out

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            out += self._start({})
        out += self._close()
        usage: Usage | None = self.usage or self.ctx.extra.get("final_usage")
        body = claude_usage_body(usage)
        out.append(
            self._ev(
                "message_delta",
                {"delta": {"stop_reason": self.stop or "end_turn", "stop_sequence": None}, "usage": body},
            )
        )
        out.append(self._ev("message_stop", {}))
        return out
