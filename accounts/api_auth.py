"""Authentication for New API's `/api/*`: session cookie or access token, plus `New-Api-User`.

Role and status are read from the database on every request (New API froze them at login), and a
session ends once the password it was started under has changed (accounts/sessions.py).
"""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication

from . import sessions
from .models import User


class NotLoggedIn(exceptions.AuthenticationFailed):
    status_code = 401


class NewApiAuthentication(BaseAuthentication):
    def authenticate(self, request):
        django_request = request._request
        user = None
        auth_header = django_request.headers.get("Authorization", "").strip()
        if auth_header:
            token = auth_header.removeprefix("Bearer ").strip()
            if token:
                user = User.live.filter(access_token=token).first()
                if user is None:
                    raise NotLoggedIn("无权进行此操作，access token 无效")
        if user is None:
            session_user_id = django_request.session.get("id") if hasattr(django_request, "session") else None
            if session_user_id is None:
                return None
            user = User.live.filter(pk=session_user_id).first()
            if user is None:
                return None
            if not sessions.is_current(django_request.session, user):
                django_request.session.flush()  # logged out by a password change or reset elsewhere
                return None
        header_id = django_request.headers.get("New-Api-User", "").strip()
        if not header_id:
            raise NotLoggedIn("无权进行此操作，未提供 New-Api-User")
        if header_id != str(user.pk):
            raise NotLoggedIn("无权进行此操作，New-Api-User 与登录用户不匹配")
        return (user, None)

    def authenticate_header(self, request) -> str:
        return "Session"
