"""Login with username or email against New API's raw bcrypt hashes."""

from __future__ import annotations

from django.contrib.auth.backends import BaseBackend
from django.db.models import Q

from .models import User


class UsernameOrEmailBackend(BaseBackend):
    def authenticate(self, request, username: str | None = None, password: str | None = None, **kwargs):
        if not username or password is None:
            return None
        user = User.live.filter(Q(username=username) | Q(email=username)).order_by("id").first()
        if user is None or not user.check_password(password):
            return None
        return user

    def get_user(self, user_id):
        return User.live.filter(pk=user_id).first()

    def has_perm(self, user_obj, perm, obj=None):
        return user_obj.has_perm(perm, obj)
