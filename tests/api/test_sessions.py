"""Dashboard sessions end on logout, password change and reset; the cookie is Secure over HTTPS."""

from __future__ import annotations

import re
import uuid

import httpx
import pytest

from accounts.models import User
from accounts.services.email import _store
from tests.conftest import live, make_user, start_gateway

pytestmark = [live]


@pytest.fixture(scope="module")
def behind_proxy(django_db_setup, django_db_blocker):
    gw = start_gateway({"TRUSTED_PROXIES": "127.0.0.1"})
    yield gw
    gw.stop()


def login(gw, user: User, password: str | None = None, **headers: str) -> httpx.Response:
    resp = httpx.post(f"{gw.url}/api/user/login", json={"username": user.username,
                                                        "password": password or f"{user.username}-password"},
                      headers=headers)
    assert resp.json()["success"] is True, resp.text
    return resp


def session_cookie(resp: httpx.Response) -> str:
    return resp.cookies["session"]


def who(gw, user: User, cookie: str) -> httpx.Response:
    return httpx.get(f"{gw.url}/api/user/self", cookies={"session": cookie}, headers={"New-Api-User": str(user.pk)})


def logged_in(gw, user: User, cookie: str) -> bool:
    resp = who(gw, user, cookie)
    return resp.status_code == 200 and resp.json()["success"] is True


def test_logout_ends_the_session_even_for_a_copy_of_the_cookie(gateway):
    user = make_user("sara")
    cookie = session_cookie(login(gateway, user))
    assert logged_in(gateway, user, cookie)
    assert httpx.get(f"{gateway.url}/api/user/logout", cookies={"session": cookie}).json()["success"] is True
    assert not logged_in(gateway, user, cookie)


def test_a_password_change_ends_every_other_session(gateway):
    user = make_user("sam")
    here = session_cookie(login(gateway, user))
    elsewhere = session_cookie(login(gateway, user))
    resp = httpx.put(f"{gateway.url}/api/user/self", cookies={"session": here}, headers={"New-Api-User": str(user.pk)},
                     json={"password": "brand-new-pass", "original_password": "sam-password"})
    assert resp.json()["success"] is True, resp.text
    playground = httpx.post(f"{gateway.url}/pg/chat/completions", cookies={"session": elsewhere},
                            headers={"New-Api-User": str(user.pk)}, json={"model": "gpt-4o-mini", "messages": []})
    assert playground.status_code == 401  # the playground checks it too
    assert not logged_in(gateway, user, elsewhere)
    assert logged_in(gateway, user, here)  # the session that changed it stays
    session_cookie(login(gateway, user, "brand-new-pass"))


def test_an_admin_setting_the_password_ends_the_users_sessions(gateway, root_user):
    user = make_user("sid")
    cookie = session_cookie(login(gateway, user))
    root_cookie = session_cookie(login(gateway, root_user))
    resp = httpx.put(f"{gateway.url}/api/user/", cookies={"session": root_cookie},
                     headers={"New-Api-User": str(root_user.pk)}, json={"id": user.pk, "password": "set-by-root"})
    assert resp.json()["success"] is True, resp.text
    assert not logged_in(gateway, user, cookie)
    assert logged_in(gateway, root_user, root_cookie)


def test_a_password_reset_ends_sessions_and_rotates_the_access_token(gateway):
    user = make_user("sue", email="sue@example.com")
    user.access_token = uuid.uuid4().hex
    user.save(update_fields=["access_token"])
    old_token = user.access_token
    cookie = session_cookie(login(gateway, user))
    reset_token = uuid.uuid4().hex
    _store("r", "sue@example.com", reset_token)  # what the reset mail would have carried
    resp = httpx.post(f"{gateway.url}/api/user/reset", json={"email": "sue@example.com", "token": reset_token})
    assert resp.json()["success"] is True, resp.text
    assert not logged_in(gateway, user, cookie)
    by_token = httpx.get(f"{gateway.url}/api/user/self", headers={"Authorization": old_token, "New-Api-User": str(user.pk)})
    assert by_token.status_code == 401
    user.refresh_from_db()
    assert user.access_token and user.access_token != old_token
    login(gateway, user, resp.json()["data"])


def _cookie_flags(resp: httpx.Response) -> str:
    return next(v for v in resp.headers.get_list("set-cookie") if v.startswith("session="))


def test_session_cookie_is_secure_only_when_https_is_known(gateway, behind_proxy):
    user = make_user("sol")
    assert "secure" not in _cookie_flags(login(gateway, user)).lower()
    # Anyone can send X-Forwarded-Proto; only a trusted proxy's counts.
    assert "secure" not in _cookie_flags(login(gateway, user, **{"X-Forwarded-Proto": "https"})).lower()
    assert "secure" in _cookie_flags(login(behind_proxy, user, **{"X-Forwarded-Proto": "https"})).lower()
    assert "secure" not in _cookie_flags(login(behind_proxy, user, **{"X-Forwarded-Proto": "http"})).lower()


def test_admin_login_over_https_through_a_trusted_proxy(behind_proxy, gateway, root_user):
    """Django's CSRF origin check needs to know the client used HTTPS; a forged header must not say so."""

    def attempt(gw) -> httpx.Response:
        page = httpx.get(f"{gw.url}/admin/login/", headers={"X-Forwarded-Proto": "https"})
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        origin = "https://" + gw.url.removeprefix("http://")
        return httpx.post(f"{gw.url}/admin/login/?next=/admin/", cookies={"csrftoken": page.cookies["csrftoken"]},
                          data={"csrfmiddlewaretoken": token, "username": "root", "password": "root-password"},
                          headers={"X-Forwarded-Proto": "https", "Origin": origin, "Referer": origin + "/admin/login/"})

    trusted = attempt(behind_proxy)
    assert trusted.status_code == 302 and trusted.headers["location"] == "/admin/"
    assert "secure" in _cookie_flags(trusted).lower()
    assert attempt(gateway).status_code == 403  # plain HTTP, whatever the header claims: the origin does not match
