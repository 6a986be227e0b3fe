"""Dashboard sessions that end when they should: on logout, and on any password change or reset.

Sessions are stored server-side, so a logout deletes the one it ends. Each session also carries a
hash of the user's password hash (Django's session auth hash), checked on every request against
the user row the request loads anyway: a new password ends every other session at no extra cost.
"""

from __future__ import annotations

from django.utils.crypto import constant_time_compare

from .models import User

HASH_KEY = "auth_hash"


def start(session, user: User) -> None:
    session.cycle_key()  # a session id fixed before login never becomes a logged-in one
    session["id"] = user.pk
    session["username"] = user.username
    session["role"] = user.role
    session["status"] = user.status
    session["group"] = user.group
    session[HASH_KEY] = user.get_session_auth_hash()


def is_current(session, user: User) -> bool:
    """Whether this session was started (or renewed) under the user's present password."""
    stored = session.get(HASH_KEY)
    return bool(stored) and constant_time_compare(str(stored), user.get_session_auth_hash())


def keep_after_password_change(session, user: User) -> None:
    """The session that changed the password stays logged in; every other one ends."""
    if session.get("id") == user.pk:
        session[HASH_KEY] = user.get_session_auth_hash()
