"""OpenAI's wire format read back: usage blocks, the model output in a choice, and the SSE pass-through.

Shared by every adaptor whose upstream answers the OpenAI way (the OpenAI family, Dify's usage,
the thinking-to-content translator).
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.adaptors.base import StreamTranslator, Usage
from relay.streaming import DONE, frame


def usage_from(obj: Any) -> Usage | None:
    if not isinstance(obj, dict):
        return None
    prompt = int(obj.get("prompt_tokens") or obj.get("input_tokens") or 0)
    completion = int(obj.get("completion_tokens") or obj.get("output_tokens") or 0)
    if prompt == 0 and completion == 0:
        return None
    details = obj.get("prompt_tokens_details") or {}
    cached = int(details.get("cached_tokens") or obj.get("prompt_cache_hit_tokens") or 0)
    # cache writes: ours (from Claude channels) and OpenRouter's name for them
    creation = int(details.get("cache_creation_tokens") or details.get("cache_write_tokens") or 0)
    reasoning = int((obj.get("completion_tokens_details") or {}).get("reasoning_tokens") or 0)
    return Usage(prompt, completion, cached, creation, reasoning)


def choice_text(choice: dict[str, Any]) -> str:
    """Model output inside one choice (message or delta): content, reasoning and tool arguments."""
    msg = choice.get("delta") or choice.get("message") or {}
    parts: list[str] = []
    for key in ("content", "reasoning_content", "reasoning"):
        value = msg.get(key)
        if isinstance(value, str):
            parts.append(value)
    for call in msg.get("tool_calls") or []:
        fn = call.get("function") or {}
        parts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    if isinstance(choice.get("text"), str):  # legacy completions
        parts.append(choice["text"])
    return "".join(parts)


def chunk_of(data: bytes) -> dict[str, Any] | None:
    """One OpenAI stream event as a dict; None for `[DONE]`, keep-alives and anything not a JSON object."""
    if data.startswith(b"[DONE]"):
        return None
    try:
        chunk = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return chunk if isinstance(chunk, dict) else None


class OpenAIStreamTranslator(StreamTranslator):
    def feed(self, event: str, data: bytes) -> list[bytes]:
        chunk = chunk_of(data)
        if chunk is None:
            return []
        if "error" in chunk and "choices" not in chunk:
            # an error event mid-stream: pass it on, bill only what came before
            return [frame(data)]
        usage = usage_from(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        choices = chunk.get("choices") or []
        for choice in choices:
            text = choice_text(choice)
            if text:
                self.text_parts.append(text)
                self.first_output = True
            calls = (choice.get("delta") or {}).get("tool_calls") or []
            self.tool_calls = max(self.tool_calls, len(calls))
        if not choices and usage is not None and not self.ctx.client_wants_usage:
            return []  # the usage chunk we forced: the client did not ask for it
        if usage is not None and not self.ctx.client_wants_usage:
            chunk.pop("usage", None)
            return [frame(orjson.dumps(chunk))]
        return [frame(data)]

    def finish(self) -> list[bytes]:
        out: list[bytes] = []
        if self.ctx.client_wants_usage and self.usage is None and self.ctx.extra.get("final_usage"):
            usage: Usage = self.ctx.extra["final_usage"]
            out.append(
                frame(
                    orjson.dumps(
                        {
                            "id": self.ctx.extra.get("request_id", ""),
                            "object": "chat.completion.chunk",
                            "model": self.ctx.origin_model,
                            "choices": [],
                            "usage": {
                                "prompt_tokens": usage.prompt_tokens,
                                "completion_tokens": usage.completion_tokens,
                                "total_tokens": usage.total,
                            },
                        }
                    )
                )
            )
        out.append(DONE)
        return out
