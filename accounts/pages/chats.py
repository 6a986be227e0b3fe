"""/chat2link: the chat clients of the `Chats` option, opened with one of the person's keys."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.utils.translation import gettext as _

from accounts.models import TOKEN_ENABLED, User
from accounts.services.tokens import tokens_of
from newapi_site.options import options

from .common import show, signed_in


class AppLinkRedirect(HttpResponseRedirect):
    """Also to the desktop apps' own schemes (ama://, opencat://) that the admin configured."""

    def __init__(self, target: str) -> None:
        self.allowed_schemes = ["http", "https", target.split(":", 1)[0].lower()]
        super().__init__(target)


def chat_clients() -> list[tuple[str, str]]:
    """(name, link template) pairs; each entry of the option is a one-key object."""
    try:
        raw: Any = json.loads(options.get("Chats") or "[]")
    except ValueError:
        return []
    pairs: list[tuple[str, str]] = []
    for entry in raw if isinstance(raw, list) else []:
        if isinstance(entry, dict):
            pairs += [(str(name), str(link)) for name, link in entry.items()]
    return pairs


@signed_in
def chat2link(request: HttpRequest, user: User) -> HttpResponse:
    """Lists the clients; `?i=N` opens client N with the first enabled key filled in."""
    clients = chat_clients()
    token = tokens_of(user).filter(status=TOKEN_ENABLED).order_by("id").first()
    address = (options.get("ServerAddress") or request.build_absolute_uri("/")).rstrip("/")
    if "i" in request.GET:
        if token is None:
            messages.error(request, _("Create a token first"))
            return HttpResponseRedirect("/token")
        try:
            _name, link = clients[int(request.GET["i"])]
        except (ValueError, IndexError):
            return HttpResponseRedirect("/chat2link")
        target = link.replace("{key}", "sk-" + token.key).replace("{address}", address)
        return AppLinkRedirect(target)
    return show(
        request,
        "console/chats.html",
        {"clients": [name for name, _link in clients], "has_token": token is not None},
    )
