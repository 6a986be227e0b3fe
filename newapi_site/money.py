"""Quota amounts as users read them: money when DisplayInCurrencyEnabled is on, else points."""

from __future__ import annotations

from newapi_site.options import options


def format_quota(quota: int | float) -> str:
    """`＄0.002000` (full-width dollar, six decimals) or `1000 点额度`, as New API writes them."""
    if options.get_bool("DisplayInCurrencyEnabled"):
        per_unit = options.get_float("QuotaPerUnit", 500000) or 500000
        return f"＄{quota / per_unit:.6f}"
    return f"{int(quota)} 点额度"


def log_quota(quota: int | float) -> str:
    """A quota amount in a log line: `＄0.002000 额度`, or `1000 点额度` when currency display is off."""
    if options.get_bool("DisplayInCurrencyEnabled"):
        per_unit = options.get_float("QuotaPerUnit", 500000) or 500000
        return f"＄{quota / per_unit:.6f} 额度"
    return f"{int(quota)} 点额度"
