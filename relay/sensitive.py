"""Sensitive-word check on prompts.

Words come from the `SensitiveWords` option (one per line), matched case-insensitively on
lower-cased text by one compiled alternation (longest words first), rebuilt only when the option
changes. Checked before any quota is reserved, so a refused request costs nothing.
"""

from __future__ import annotations

import re
from typing import Any

from newapi_site.options import options
from relay.errors import LocalError

_cache: tuple[str, re.Pattern[str] | None] = ("", None)


def pattern() -> re.Pattern[str] | None:
    global _cache
    raw = options.get("SensitiveWords")
    if raw != _cache[0]:
        words = sorted({w.strip().lower() for w in raw.splitlines() if w.strip()}, key=len, reverse=True)
        _cache = (raw, re.compile("|".join(map(re.escape, words))) if words else None)
    return _cache[1]


def enabled() -> bool:
    return options.get_bool("CheckSensitiveEnabled") and options.get_bool("CheckSensitiveOnPromptEnabled")


def find(texts: list[str]) -> str | None:
    """The first sensitive word found, if any."""
    pat = pattern()
    if pat is None:
        return None
    for text in texts:
        if text:
            hit = pat.search(text.lower())
            if hit:
                return hit.group(0)
    return None


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def texts_for(mode: str, body: dict[str, Any]) -> list[str]:
    if mode == "chat":
        out: list[str] = []
        for msg in body.get("messages") or []:
            content = msg.get("content") if isinstance(msg, dict) else None
            if isinstance(content, str):
                out.append(content)
            elif isinstance(content, list):  # text parts only; images are not inspected
                out.extend(
                    str(p.get("text") or "")
                    for p in content
                    if isinstance(p, dict) and p.get("type") == "text"
                )
        return out
    if mode == "responses":  # instructions and the text of the input items
        raw = body.get("input")
        texts = _strings(body.get("instructions")) + _strings(raw)
        for item in raw if isinstance(raw, list) else []:
            content = item.get("content") if isinstance(item, dict) else None
            texts += _strings(content) + [
                str(p.get("text") or "")
                for p in (content if isinstance(content, list) else [])
                if isinstance(p, dict) and p.get("type") in ("input_text", "output_text")
            ]
        return texts
    if mode in ("completions", "images"):
        return _strings(body.get("prompt"))
    if mode in ("moderations", "audio_speech"):
        return _strings(body.get("input"))
    return []


CHECKED = frozenset({"chat", "completions", "moderations", "images", "audio_speech", "responses"})


def check(mode: str, body: dict[str, Any]) -> None:
    """Raise 400 when the prompt holds a sensitive word (when checking is on for this mode)."""
    if mode not in CHECKED or not enabled():
        return
    if find(texts_for(mode, body)) is not None:
        raise LocalError(
            "sensitive words detected",
            status=400,
            type="invalid_request_error",
            code="sensitive_words_detected",
        )
