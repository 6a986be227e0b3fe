"""Known model names: per channel type for the channel editor, and as OpenAI model objects."""

from __future__ import annotations

from typing import Any

from billing.ratio_defaults import DEFAULT_MODEL_PRICE, DEFAULT_MODEL_RATIO
from relay.adaptors.registry import PROVIDERS
from relay.models import Ability


def known_models() -> list[str]:
    return sorted(set(DEFAULT_MODEL_RATIO) | set(DEFAULT_MODEL_PRICE))


def models_by_channel_type() -> dict[int, list[str]]:
    """Which built-in model names belong to which channel type, by the name prefixes its record lists."""
    names = known_models()
    return {int(p.type): [m for m in names if m.startswith(p.models)] for p in PROVIDERS if p.models}


def all_models_as_objects() -> list[dict[str, Any]]:
    names = set(known_models()) | set(Ability.objects.values_list("model", flat=True).distinct())
    return [
        {"id": name, "object": "model", "created": 1626777600, "owned_by": "custom"} for name in sorted(names)
    ]


def enabled_models() -> list[str]:
    return sorted(set(Ability.objects.filter(enabled=True).values_list("model", flat=True).distinct()))
