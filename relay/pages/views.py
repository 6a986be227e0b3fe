"""/pricing (models and their prices per group) and /playground (streams through /pg)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from accounts.models import User
from accounts.pages.common import show, signed_in
from accounts.services.groups import group_ratios, usable_groups
from newapi_site.options import options
from relay.api.pricing import models_for_user_group, pricing_list


def pricing(request: HttpRequest) -> HttpResponse:
    """Per 1M tokens in dollars: ratio × 2 for input, × completion ratio for output (New API's rule)."""
    ratios = group_ratios()
    rows = []
    for row in pricing_list():
        for group in row["enable_groups"]:
            ratio = float(ratios.get(group, 1))
            if row["quota_type"] == 1:
                input_price, output_price, per_call = None, None, row["model_price"] * ratio
            else:
                input_price = row["model_ratio"] * 2 * ratio
                output_price = input_price * row["completion_ratio"]
                per_call = None
            rows.append(
                {
                    "model": row["model_name"],
                    "group": group,
                    "group_ratio": ratio,
                    "input": input_price,
                    "output": output_price,
                    "per_call": per_call,
                }
            )
    query = request.GET.get("q", "").strip().lower()
    if query:
        rows = [r for r in rows if query in r["model"].lower()]
    return show(request, "console/pricing.html", {"rows": rows, "q": query})


@signed_in
def playground(request: HttpRequest, user: User) -> HttpResponse:
    own = user.group or "default"
    groups = usable_groups(own)
    return show(
        request,
        "console/playground.html",
        {
            "models": models_for_user_group(own),
            "groups": groups,
            "own_group": own,
            "user_id": user.pk,
            "system_prompt": options.get("PlaygroundSystemPrompt", ""),
        },
    )
