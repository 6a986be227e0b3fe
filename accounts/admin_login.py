"""The Django admin's front door: the same per-IP login limit and switches as /api/user/login,
and a loud warning while root still has the password every installation starts with.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.admin import AdminSite
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from newapi_site.api.ratelimit import allow_critical
from newapi_site.options import options
from newapi_site.roles import ROLE_ROOT

from .models import User, verify_password

DEFAULT_ROOT_PASSWORD = "123456"
DEFAULT_PASSWORD_WARNING = (
    "The root account still has the default password 123456: anyone can log in as root. "
    "Change it now (Personal settings, or PUT /api/user/self)."
)
# bcrypt costs ~50 ms: remember the answer per stored hash, which changes with the password.
_default_checked: dict[str, bool] = {}


def root_has_default_password() -> bool:
    hashes = User.live.filter(role__gte=ROLE_ROOT).values_list("password", flat=True)
    for hashed in hashes:
        if hashed not in _default_checked:
            if len(_default_checked) > 64:
                _default_checked.clear()
            _default_checked[hashed] = verify_password(DEFAULT_ROOT_PASSWORD, hashed)
        if _default_checked[hashed]:
            return True
    return False


def default_password_warning() -> str:
    """The start-up line for the console, or "" (also when the database is not migrated yet)."""
    try:
        return f"WARNING: {DEFAULT_PASSWORD_WARNING}" if root_has_default_password() else ""
    except DatabaseError:
        return ""


def install(site: AdminSite) -> None:
    """Wrap the site's login and index views; call before the site's URLs are built."""
    login_view = site.login
    index_view = site.index

    def login(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.method == "POST":
            if not allow_critical(request):
                return HttpResponse(
                    "Too many login attempts from this address; try again later.",
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
            if not options.get_bool("PasswordLoginEnabled"):
                messages.error(request, "管理员关闭了密码登录 (password login is disabled)")
                return HttpResponseRedirect(request.get_full_path())
        return login_view(request, extra_context)

    def index(request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if request.user.is_active and request.user.is_staff and root_has_default_password():
            messages.warning(request, DEFAULT_PASSWORD_WARNING)
        return index_view(request, extra_context)

    site.login = login  # type: ignore[method-assign]
    site.index = index  # type: ignore[method-assign,assignment]
