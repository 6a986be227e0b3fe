"""The admin's app and model names in the reader's language (渠道 for channels, 令牌 for tokens).

The names are given here, where the admin builds its menu, rather than as model verbose names:
those are part of each model's migration state.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

APP_NAMES = {
    "accounts": _("Accounts"),
    "relay": _("Channels and relay"),
    "billing": _("Billing"),
    "tasks": _("Drawing and music tasks"),
    "admin": _("Audit"),
}
MODEL_NAMES = {
    "accounts.user": _("Users"),
    "accounts.token": _("Tokens"),
    "accounts.option": _("Options"),
    "relay.channel": _("Channels"),
    "billing.log": _("Logs"),
    "billing.quotadata": _("Usage by hour"),
    "billing.redemption": _("Redemption codes"),
    "billing.topup": _("Top-ups"),
    "tasks.midjourney": _("Midjourney tasks"),
    "tasks.task": _("Suno tasks"),
    "admin.logentry": _("Audit trail"),
}


def install(site: AdminSite) -> None:
    """Names the index, the sidebar and the app pages show, translated per request."""
    build = site.get_app_list

    def get_app_list(request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = build(request, app_label)
        for app in apps:
            if app["app_label"] in APP_NAMES:
                app["name"] = str(APP_NAMES[app["app_label"]])
            for model in app["models"]:
                name = MODEL_NAMES.get(f"{app['app_label']}.{model['object_name'].lower()}")
                if name is not None:
                    model["name"] = str(name)
        return apps

    site.get_app_list = get_app_list  # type: ignore[method-assign]
