"""Prices and ratios (shared/spec/relay.md §6) and the quota formulas (§9).

QuotaPerUnit quota = $1; model ratio 1 = $0.002 / 1K tokens; so quota per token = modelRatio × groupRatio.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from newapi_site.options import options

UNSET_MODEL_RATIO = 37.5


def normalize_model(name: str) -> str:
    """gpt-4-gizmo-… and gpt-4o-gizmo-… share one wildcard ability and price."""
    if name.startswith("gpt-4-gizmo"):
        return "gpt-4-gizmo-*"
    if name.startswith("gpt-4o-gizmo"):
        return "gpt-4o-gizmo-*"
    return name


def model_price(name: str) -> float | None:
    prices = options.get_json("ModelPrice", {}) or {}
    value = prices.get(normalize_model(name))
    return float(value) if value is not None else None


def model_ratio(name: str) -> tuple[float, bool]:
    ratios = options.get_json("ModelRatio", {}) or {}
    name = normalize_model(name) if name.startswith("gpt-4-gizmo") else name
    if name in ratios:
        return float(ratios[name]), True
    return UNSET_MODEL_RATIO, options.get_bool("SelfUseModeEnabled")


def group_ratio(group: str) -> float:
    ratios = options.get_json("GroupRatio", {}) or {}
    return float(ratios.get(group, 1))


def cache_ratio(name: str) -> float:
    ratios = options.get_json("CacheRatio", {}) or {}
    return float(ratios.get(name, 1))


def cache_creation_ratio(name: str) -> float:
    return 1.25


def _hardcoded_completion_ratio(name: str) -> tuple[float, bool]:
    """(ratio, claimed). A claimed ratio wins over the option map, as in New API."""
    n = name.lower()
    if n.startswith("gpt-4o-gizmo") or "-gizmo-" in n:
        return 1, False
    if n.startswith("gpt-4o"):
        return (3, True) if n == "gpt-4o-2024-05-13" else (4, True)
    if n.startswith("gpt-4.5-preview"):
        return 2, True
    if n.startswith("gpt-4-turbo") or n.endswith("gpt-4-1106") or n.endswith("gpt-4-1105"):
        return 3, True
    if n.startswith("chatgpt-4o-latest"):
        return 3, True
    if n.startswith(("o1", "o3")):
        return 4, True
    if n.startswith("gpt-4") and not n.endswith("-all"):
        return 2, False
    if n.startswith("gpt-3.5"):
        if n == "gpt-3.5-turbo" or n.endswith("0125"):
            return 3, True
        if n.endswith("1106"):
            return 2, True
        return 4 / 3, True
    if "claude-instant-1" in n or "claude-2" in n:
        return 3, True
    if "claude-3" in n:
        return 5, True
    if n.startswith("mistral-"):
        return 3, True
    if n.startswith("gemini-2.5-pro-preview"):
        return 8, True
    if n.startswith(("gemini-1.5", "gemini-2.0")):
        return 4, True
    if n.startswith("gemini"):
        return 4, False
    if n.startswith("command"):
        if n == "command-r":
            return 3, True
        if n == "command-r-plus":
            return 5, True
        if n.endswith("-08-2024"):
            return 4, True
        return 4, False
    if n in ("deepseek-chat", "deepseek-reasoner"):
        return 4, True
    if n.startswith(("ernie-speed", "ernie-lite", "ernie-character", "ernie-functions")):
        return 2, True
    if n == "llama2-70b-4096":
        return 0.8 / 0.64, True
    if n == "llama3-8b-8192":
        return 2, True
    if n == "llama3-70b-8192":
        return 0.79 / 0.59, True
    return 1, False


def completion_ratio(name: str) -> float:
    ratios = options.get_json("CompletionRatio", {}) or {}
    name = normalize_model(name)
    if "/" in name and name in ratios:
        return float(ratios[name])
    hard, claimed = _hardcoded_completion_ratio(name)
    if claimed:
        return hard
    if name in ratios:
        return float(ratios[name])
    return hard


@dataclass(slots=True)
class Price:
    """Everything billing needs to know about one request's model and group."""

    model: str
    group: str
    use_price: bool
    model_price: float
    model_ratio: float
    group_ratio: float
    completion_ratio: float
    cache_ratio: float
    cache_creation_ratio: float


class PriceNotSet(Exception):
    pass


def price_for(model: str, group: str, accept_unset: bool = False) -> Price:
    g = group_ratio(group)
    price = model_price(model)
    if price is not None:
        return Price(model, group, True, price, 0.0, g, 1.0, 1.0, 1.25)
    ratio, ok = model_ratio(model)
    if not ok and not accept_unset:
        raise PriceNotSet(model)
    return Price(
        model,
        group,
        False,
        -1.0,
        ratio,
        g,
        completion_ratio(model),
        cache_ratio(model),
        cache_creation_ratio(model),
    )


def quota_per_unit() -> float:
    return options.get_float("QuotaPerUnit", 500000)


def pre_consume_estimate(price: Price, prompt_tokens: int, max_tokens: int) -> int:
    """relay.md §6.3: fixed price, else (prompt + max_tokens or PreConsumedQuota) × ratios."""
    if price.use_price:
        return int(price.model_price * quota_per_unit() * price.group_ratio)
    tokens = prompt_tokens + max_tokens if max_tokens else options.get_int("PreConsumedQuota", 500)
    return int(tokens * price.model_ratio * price.group_ratio)


def text_quota(price: Price, prompt: int, completion: int, cached: int = 0, cache_creation: int = 0) -> int:
    """relay.md §9.2, with cache-write tokens billed at their own ratio (dropped by New API's text path)."""
    if price.use_price:
        return int(
            (
                Decimal(str(price.model_price))
                * Decimal(str(quota_per_unit()))
                * Decimal(str(price.group_ratio))
            ).to_integral_value(ROUND_HALF_UP)
        )
    if prompt + completion == 0:
        return 0
    cached = min(cached, prompt)
    cache_creation = min(cache_creation, prompt - cached)
    d = lambda v: Decimal(str(v))  # noqa: E731
    tokens = (
        d(prompt - cached - cache_creation)
        + d(cached) * d(price.cache_ratio)
        + d(cache_creation) * d(price.cache_creation_ratio)
        + d(completion) * d(price.completion_ratio)
    )
    ratio = d(price.model_ratio) * d(price.group_ratio)
    quota = int((tokens * ratio).to_integral_value(ROUND_HALF_UP))
    if ratio != 0 and quota <= 0:
        quota = 1
    return quota


# -- Realtime (audio) sessions ---------------------------------------------------------------------
AUDIO_COMPLETION_RATIO = 2


def audio_ratio(model: str) -> float:
    if model.endswith("gpt-4o-realtime-preview-2024-12-17"):
        return 8
    return 10 if "mini" in model else 20


@dataclass(slots=True)
class Tally:
    """A Realtime session's tokens in the usage shape, so local estimates and upstream usage share one formula."""

    text_in: int = 0
    audio_in: int = 0
    text_out: int = 0
    audio_out: int = 0

    def add(self, other: Tally) -> None:
        self.text_in += other.text_in
        self.audio_in += other.audio_in
        self.text_out += other.text_out
        self.audio_out += other.audio_out

    @property
    def input(self) -> int:
        return self.text_in + self.audio_in

    @property
    def output(self) -> int:
        return self.text_out + self.audio_out

    def empty(self) -> bool:
        return self.input + self.output == 0

    @classmethod
    def from_usage(cls, usage: dict[str, Any]) -> Tally:
        inp, out = usage.get("input_token_details") or {}, usage.get("output_token_details") or {}
        t = cls(
            int(inp.get("text_tokens") or 0),
            int(inp.get("audio_tokens") or 0),
            int(out.get("text_tokens") or 0),
            int(out.get("audio_tokens") or 0),
        )
        # Usage without details: count the totals as text.
        t.text_in += max(int(usage.get("input_tokens") or 0) - t.input, 0)
        t.text_out += max(int(usage.get("output_tokens") or 0) - t.output, 0)
        return t


def realtime_quota(price: Price, tally: Tally, model: str) -> int:
    """Text at the completion ratio, audio at the model's audio ratio (output audio twice that)."""
    d = lambda v: Decimal(str(v or 0))  # noqa: E731
    a_ratio = d(audio_ratio(model))
    tokens = (
        d(tally.text_in)
        + d(tally.text_out) * d(price.completion_ratio)
        + d(tally.audio_in) * a_ratio
        + d(tally.audio_out) * a_ratio * AUDIO_COMPLETION_RATIO
    )
    ratio = d(price.model_ratio) * d(price.group_ratio)
    quota = int((tokens * ratio).to_integral_value(ROUND_HALF_UP))
    return max(quota, 1) if ratio != 0 else quota
