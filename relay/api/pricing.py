"""What the enabled abilities offer: the public price list and the models a user's groups reach."""

from __future__ import annotations

from typing import Any

from accounts.services.groups import usable_groups
from billing import pricing
from relay.models import Ability


def pricing_list() -> list[dict[str, Any]]:
    """GET /api/pricing: one row per enabled model, with its price or ratios and its groups."""
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


def models_for_user_group(user_group: str) -> list[str]:
    groups = list(usable_groups(user_group))
    rows = Ability.objects.filter(group__in=groups, enabled=True).values_list("model", flat=True).distinct()
    return sorted(set(rows))
