"""Names for Django's own admin app in the reader's language: its log is shown as the audit trail.

The project's apps and models carry translatable verbose names themselves (渠道 for channels,
令牌 for tokens); only django.contrib.admin's names are given here, where the admin builds its menu.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

APP_NAMES = {"admin": _("Audit")}
MODEL_NAMES = {"admin.logentry": _("Audit trail")}


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
