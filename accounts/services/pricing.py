"""The public price list (GET /api/pricing), built from enabled abilities (management.md §3.11)."""

from __future__ import annotations

from typing import Any

from billing import pricing
from relay.models import Ability


def pricing_list() -> list[dict[str, Any]]:
    enabled: dict[str, set[str]] = {}
    for model, group in Ability.objects.filter(enabled=True).values_list("model", "group").distinct():
        enabled.setdefault(model, set()).add(group)
    rows = []
    for model in sorted(enabled):
        price = pricing.model_price(model)
        ratio, _known = pricing.model_ratio(model)
        rows.append(
            {
                "model_name": model,
                "quota_type": 1 if price is not None else 0,
                "model_ratio": ratio,
                "model_price": price or 0,
                "owner_by": "",
                "completion_ratio": pricing.completion_ratio(model),
                "enable_groups": sorted(enabled[model]),
            }
        )
    return rows
