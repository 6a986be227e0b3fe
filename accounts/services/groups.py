"""Groups a user may pick (for tokens and the playground) and their ratios."""

from __future__ import annotations

from newapi_site.options import options


def group_ratios() -> dict[str, float]:
    return dict(options.get_json("GroupRatio", {}) or {})


def usable_groups(user_group: str) -> dict[str, str]:
    """New API's GetUserUsableGroups: the configured set, plus the user's own group."""
    groups = dict(options.get_json("UserUsableGroups", {}) or {})
    if not user_group and "default" not in groups:
        groups["default"] = "默认分组"
    if user_group and user_group not in groups:
        groups[user_group] = "用户分组"
    return groups


def is_usable_group(user_group: str, group: str) -> bool:
    return group in usable_groups(user_group) and group in group_ratios()


def groups_with_ratio(names: dict[str, str]) -> dict[str, dict[str, object]]:
    ratios = group_ratios()
    return {name: {"ratio": ratios[name], "desc": desc} for name, desc in names.items() if name in ratios}


def all_groups_with_ratio() -> dict[str, dict[str, object]]:
    usable = options.get_json("UserUsableGroups", {}) or {}
    return {
        name: {"ratio": ratio, "desc": usable.get(name, "用户分组")} for name, ratio in group_ratios().items()
    }
