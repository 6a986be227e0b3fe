"""The template context every console page gets: the site's name and texts, the person, the menu."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.services.system import status_payload
from newapi_site.roles import ROLE_ADMIN

from .common import page_user


def _menu(
    request: HttpRequest, signed_in: bool, is_admin: bool, status: dict[str, Any]
) -> list[dict[str, Any]]:
    items: list[tuple[str, str]] = [("/", _("Home"))]
    if signed_in:
        items += [
            ("/detail", _("Dashboard")),
            ("/token", _("Tokens")),
            ("/log", _("Logs")),
            ("/topup", _("Top up")),
            ("/playground", _("Playground")),
        ]
        if status.get("enable_drawing"):
            items.append(("/midjourney", _("Midjourney")))
        if status.get("enable_task"):
            items.append(("/task", _("Tasks")))
        if status.get("chats"):
            items.append(("/chat2link", _("Chat")))
        items.append(("/setting", _("Settings")))
    items += [("/pricing", _("Pricing")), ("/about", _("About"))]
    if is_admin:
        items.append(("/admin/", _("Admin")))
    if not signed_in:
        items.append(("/register", _("Register")))
    path = request.path.rstrip("/") or "/"
    return [{"url": url, "label": label, "current": (url.rstrip("/") or "/") == path} for url, label in items]


def site(request: HttpRequest) -> dict[str, Any]:
    if request.path.startswith(("/admin", "/api")):
        return {}
    status = status_payload()
    user = page_user(request)
    return {
        "site": {
            "name": status["system_name"] or "New API",
            "logo": status["logo"],
            "footer": status["footer_html"],
            "status": status,
            "user": user,
            "nav": _menu(request, user is not None, user is not None and user.role >= ROLE_ADMIN, status),
        }
    }
