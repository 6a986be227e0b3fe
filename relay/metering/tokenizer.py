"""Offline token counting with the vocabularies bpe-openai ships.

Nothing downloads at run time. o200k_base for gpt-4o / chatgpt-4o / o1, cl100k_base otherwise.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import orjson


@lru_cache(maxsize=2)
def _encoding(name: str) -> Any:
    # Imported on first use: the module alone costs ~65 MB of RSS, and most relayed
    # requests carry upstream usage and never need it.
    import bpe_openai

    return bpe_openai.get_encoding(name)


def encoding_for(model: str) -> Any:
    if model.startswith(("gpt-4o", "chatgpt-4o", "o1", "gpt-4.5", "gpt-4.1")):
        return _encoding("o200k_base")
    return _encoding("cl100k_base")


def count_text(text: str, model: str) -> int:
    if not text:
        return 0
    return len(encoding_for(model).encode_ordinary(text))


def _stringify(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_stringify(v) for v in value)
    return orjson.dumps(value).decode()


def count_messages(messages: list[dict[str, Any]], model: str, tools: list[Any] | None = None) -> int:
    """Chat prompt tokens: 3 per message + role + content parts (+ name), +3 at the end."""
    per_message, per_name = (4, -1) if model == "gpt-3.5-turbo-0301" else (3, 1)
    total = 0
    for msg in messages or []:
        if not isinstance(msg, dict):
            continue
        total += per_message + count_text(str(msg.get("role") or ""), model)
        content = msg.get("content")
        if isinstance(content, str):
            total += count_text(content, model)
        elif isinstance(content, list):
            for part in content:
                if not isinstance(part, dict):
                    continue
                kind = part.get("type")
                if kind == "text":
                    total += count_text(str(part.get("text") or ""), model)
                elif kind == "image_url":
                    total += image_tokens(part.get("image_url"), model)
                elif kind == "input_audio":
                    total += 100
                elif kind == "file":
                    total += 5000
        if msg.get("name") and content:
            total += per_name + count_text(str(msg["name"]), model)
        if msg.get("tool_calls"):
            total += count_text(_stringify(msg["tool_calls"]), model)
    total += 3
    for tool in tools or []:  # New API counted only the last tool; we count them all
        fn = tool.get("function", {}) if isinstance(tool, dict) else {}
        total += 8 + count_text(
            str(fn.get("name") or "") + str(fn.get("description") or "") + _stringify(fn.get("parameters")),
            model,
        )
    return total


def image_tokens(image_url: Any, model: str) -> int:
    """The low-cost estimate without fetching the image (full tile counting lives in relay/metering/image_tokens.py)."""
    detail = image_url.get("detail") if isinstance(image_url, dict) else None
    if model.startswith("glm-4v"):
        return 1047
    if detail == "low":
        return 85
    base = 2833 if model.startswith("gpt-4o-mini") else 85
    return base * 3


def count_input(value: Any, model: str) -> int:
    """Completions prompt, embeddings input, moderation input: strings and lists of strings."""
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return len(value)  # already token ids
        return sum(count_input(v, model) for v in value)
    return count_text(_stringify(value), model)
