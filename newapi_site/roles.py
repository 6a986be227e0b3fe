"""The role ladder and account status every layer checks (users.role, users.status).

They live on the platform floor so the `/api` base view can check a caller's role without
importing the accounts app that stores them.
"""

from __future__ import annotations

ROLE_GUEST, ROLE_COMMON, ROLE_ADMIN, ROLE_ROOT = 0, 1, 10, 100
USER_ENABLED, USER_DISABLED = 1, 2
