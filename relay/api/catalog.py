"""Known model names: per channel type for the channel editor, and as OpenAI model objects."""

from __future__ import annotations

from typing import Any

from billing.ratio_defaults import DEFAULT_MODEL_PRICE, DEFAULT_MODEL_RATIO
from relay.models import Ability

# Which built-in model names belong to which channel type, by name prefix.
_PREFIXES: dict[int, tuple[str, ...]] = {
    1: (
        "gpt-",
        "o1",
        "o3",
        "o4",
        "chatgpt-",
        "text-embedding-",
        "text-",
        "dall-e",
        "whisper",
        "tts-",
        "babbage",
        "davinci",
        "omni-moderation",
    ),
    3: ("gpt-", "o1", "o3", "text-embedding-", "dall-e", "whisper", "tts-"),
    14: ("claude-",),
    15: ("ERNIE-", "ernie-"),
    16: ("chatglm",),
    17: ("qwen", "text-embedding-v"),
    18: ("SparkDesk",),
    23: ("hunyuan",),
    24: ("gemini-", "text-embedding-004"),
    25: ("moonshot-",),
    26: ("glm-",),
    31: ("yi-",),
    33: ("claude-",),
    34: ("command",),
    35: ("abab",),
    39: ("@cf/",),
    41: ("claude-", "gemini-"),
    42: ("mistral-", "open-mistral", "open-mixtral", "codestral"),
    43: ("deepseek-",),
    45: ("Doubao", "doubao"),
    48: ("grok-",),
}


def known_models() -> list[str]:
    return sorted(set(DEFAULT_MODEL_RATIO) | set(DEFAULT_MODEL_PRICE))


def models_by_channel_type() -> dict[int, list[str]]:
    names = known_models()
    return {t: [m for m in names if m.startswith(prefixes)] for t, prefixes in _PREFIXES.items()}


def all_models_as_objects() -> list[dict[str, Any]]:
    names = set(known_models()) | set(Ability.objects.values_list("model", flat=True).distinct())
    return [
        {"id": name, "object": "model", "created": 1626777600, "owned_by": "custom"} for name in sorted(names)
    ]


def enabled_models() -> list[str]:
    return sorted(set(Ability.objects.filter(enabled=True).values_list("model", flat=True).distinct()))
