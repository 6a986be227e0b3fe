"""Built-in tools priced per call (web search, file search), in dollars per 1,000 calls.

The option `tool_price_setting.prices` (a JSON object, New API's key) overrides the defaults below:
`"tool"` prices a tool for every model, `"tool:model-prefix*"` for the models that start with the
prefix (the longest prefix wins; a price of 0 makes that tool free).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from billing.pricing import Price, quota_per_unit
from newapi_site.options import options

OPTION_KEY = "tool_price_setting.prices"
DEFAULT_TOOL_PRICES: dict[str, float] = {
    "web_search": 10.0,
    "web_search_preview": 10.0,
    "file_search": 2.5,
    "web_search_preview:gpt-4o*": 25.0,
    "web_search_preview:gpt-4.1*": 25.0,
    "web_search_preview:gpt-4o-mini*": 25.0,
    "web_search_preview:gpt-4.1-mini*": 25.0,
}


def _prices() -> dict[str, float]:
    prices = dict(DEFAULT_TOOL_PRICES)
    overrides = options.get_json(OPTION_KEY, {})
    if isinstance(overrides, dict):
        for name, value in overrides.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
                prices[str(name)] = float(value)
    return prices


def tool_price(tool: str, model: str) -> float:
    """Dollars per 1,000 calls of `tool` for `model`: the longest matching model prefix, else the tool's own."""
    prices = _prices()
    best: tuple[int, float] | None = None
    for key, price in prices.items():
        name, _, pattern = key.partition(":")
        if name != tool or not pattern:
            continue
        prefix = pattern.removesuffix("*")
        if model.startswith(prefix) and (best is None or len(prefix) > best[0]):
            best = (len(prefix), price)
    if best is not None:
        return best[1]
    return prices.get(tool, 0.0)


def tool_quota(price: Price, model: str, calls: Mapping[str, int]) -> int:
    """The quota of `calls` (tool name → number of calls), in the request's group."""
    dollars = sum(
        (Decimal(str(tool_price(tool, model))) * n for tool, n in calls.items() if n > 0), Decimal(0)
    )
    dollars /= 1000
    quota = dollars * Decimal(str(quota_per_unit())) * Decimal(str(price.group_ratio))
    return int(quota.to_integral_value(ROUND_HALF_UP))
