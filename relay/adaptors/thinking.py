"""Channel setting `thinking_to_content`: reasoning_content becomes a `<think>…</think>` prefix of the
content, for clients that only read `content`. Applied to streams AND, unlike New API, to non-stream
answers too.
"""

from __future__ import annotations

from typing import Any

import orjson

from relay.adaptors.base import RelayContext
from relay.adaptors.openai_stream import OpenAIStreamTranslator

OPEN, CLOSE = "<think>\n", "\n</think>\n"
REASONING_KEYS = ("reasoning_content", "reasoning")


def _reasoning(msg: dict[str, Any]) -> str:
    for key in REASONING_KEYS:
        value = msg.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _strip(msg: dict[str, Any]) -> None:
    for key in REASONING_KEYS:
        msg.pop(key, None)


def fold_reasoning(data: dict[str, Any]) -> bool:
    """Non-stream: fold each choice's reasoning into its content. True if anything changed."""
    changed = False
    for choice in data.get("choices") or []:
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict):
            continue
        reasoning = _reasoning(msg)
        if reasoning:
            msg["content"] = OPEN + reasoning + CLOSE + (msg.get("content") or "")
            changed = True
        if any(k in msg for k in REASONING_KEYS):
            _strip(msg)
            changed = True
    return changed


class ThinkingToContentTranslator(OpenAIStreamTranslator):
    def __init__(self, ctx: RelayContext) -> None:
        super().__init__(ctx)
        self.thinking_sent = False
        self.closed = False

    def feed(self, event: str, data: bytes) -> list[bytes]:
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            return super().feed(event, data)
        if not isinstance(chunk, dict) or not chunk.get("choices"):
            return super().feed(event, data)
        choices = [c for c in chunk["choices"] if isinstance(c, dict)]
        reasoning = "".join(_reasoning(c.get("delta") or {}) for c in choices)
        has_content = any((c.get("delta") or {}).get("content") for c in choices)
        out: list[bytes] = []
        if not self.thinking_sent and reasoning:
            self.thinking_sent = True
            for c in choices:
                delta = c.setdefault("delta", {})
                _strip(delta)
                delta["content"] = OPEN + reasoning
            return super().feed(event, orjson.dumps(chunk))
        if has_content and self.thinking_sent and not self.closed:
            self.closed = True
            closing = orjson.loads(data)
            for c in closing.get("choices") or []:
                delta = {k: v for k, v in (c.get("delta") or {}).items() if k not in REASONING_KEYS}
                delta["content"] = CLOSE
                c["delta"] = delta
                c["finish_reason"] = None
            closing.pop("usage", None)
            out += super().feed(event, orjson.dumps(closing))
        for c in choices:
            delta = c.get("delta") or {}
            r = _reasoning(delta)
            if r:
                _strip(delta)
                delta["content"] = r
        out += super().feed(event, orjson.dumps(chunk))
        return out
