"""/api/oauth/*: the state nonce, provider callbacks (login, register or bind) and Telegram."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import sessions
from accounts.models import User
from accounts.serializers import render_login
from accounts.services import oauth
from newapi_site.api.base import PUBLIC, ApiError, ok
from newapi_site.roles import USER_ENABLED

from .users import CriticalView


def _session_user(request: Request) -> User | None:
    user_id = request.session.get("id")
    user = User.live.filter(pk=user_id, status=USER_ENABLED).first() if user_id else None
    return user if user is not None and sessions.is_current(request.session, user) else None


def _finish(request: Request, identity: oauth.Identity, *, allow_register: bool = True) -> Response:
    current = _session_user(request)
    if current is not None:
        oauth.bind_identity(current, identity)
        return ok(message="bind")
    user = oauth.login_or_register(identity, request.session.get("aff", ""), allow_register=allow_register)
    sessions.start(request.session, user)
    return ok(render_login(user))


class OAuthView(CriticalView):
    min_role = PUBLIC


class StateView(OAuthView):
    def get(self, request: Request) -> Response:
        return ok(oauth.new_state(request.session, request.query_params.get("aff", "")))


class GitHubView(OAuthView):
    def get(self, request: Request) -> Response:
        oauth.check_state(request.session, request.query_params.get("state", ""))
        return _finish(request, oauth.github_identity(request.query_params.get("code", "")))


class OidcView(OAuthView):
    def get(self, request: Request) -> Response:
        oauth.check_state(request.session, request.query_params.get("state", ""))
        return _finish(request, oauth.oidc_identity(request.query_params.get("code", "")))


class LinuxDoView(OAuthView):
    def get(self, request: Request) -> Response:
        if request.query_params.get("error"):
            raise ApiError(request.query_params.get("error_description") or request.query_params["error"])
        oauth.check_state(request.session, request.query_params.get("state", ""))
        redirect_uri = request.build_absolute_uri("/api/oauth/linuxdo")
        return _finish(request, oauth.linuxdo_identity(request.query_params.get("code", ""), redirect_uri))


class WeChatView(OAuthView):
    def get(self, request: Request) -> Response:
        return _finish(request, oauth.wechat_identity(request.query_params.get("code", "")))


class WeChatBindView(CriticalView):
    def get(self, request: Request) -> Response:
        oauth.bind_identity(request.user, oauth.wechat_identity(request.query_params.get("code", "")))
        return ok()


def _widget_params(request: Request) -> dict[str, str]:
    """The widget's signed fields; our own `state` rides along in the URL but is not signed."""
    return {k: request.query_params.get(k, "") for k in request.query_params if k != "state"}


class TelegramLoginView(OAuthView):
    def get(self, request: Request) -> Response:
        identity = oauth.telegram_identity(_widget_params(request))
        user = oauth.login_or_register(identity, allow_register=False)
        sessions.start(request.session, user)
        return ok(render_login(user))


class TelegramBindView(OAuthView):
    """Opened by the widget in the browser, then back to the settings page.

    The widget's fields prove a Telegram account, not that this user asked to bind it: without
    the session's `state` (from /api/oauth/state) any page could bind its own Telegram account to
    a logged-in visitor and later log in as them.
    """

    def get(self, request: Request):
        user = _session_user(request)
        if user is None:
            raise ApiError("未登录", status=401)
        oauth.check_state(request.session, request.query_params.get("state", ""))
        oauth.bind_identity(user, oauth.telegram_identity(_widget_params(request)))
        return HttpResponseRedirect("/setting")
