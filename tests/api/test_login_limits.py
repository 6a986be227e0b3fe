"""Password guessing: the per-IP login limit on /api/user/login and /admin/login/ (always on), the
PasswordLoginEnabled switch on the admin login, and the warnings while root keeps 123456."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import httpx

from newapi_site.options import update_option
from newapi_site.roles import ROLE_ROOT
from tests.conftest import ROOT, gateway_env, live, make_user, propagated

pytestmark = [live]


def admin_client(gw) -> tuple[httpx.Client, str]:
    client = httpx.Client(base_url=gw.url)
    page = client.get("/admin/login/")
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    return client, token


def admin_login(client: httpx.Client, token: str, username: str, password: str) -> httpx.Response:
    return client.post("/admin/login/?next=/admin/", data={
        "csrfmiddlewaretoken": token, "username": username, "password": password, "next": "/admin/",
    }, headers={"Referer": str(client.base_url) + "/admin/login/"})


def api_login(gw, username: str, password: str) -> int:
    return httpx.post(f"{gw.url}/api/user/login", json={"username": username, "password": password}).status_code


def test_api_login_limit_applies_with_the_global_limit_switched_off(gateway):
    # tests/_env.py runs every gateway with GLOBAL_API_RATE_LIMIT_ENABLE=false.
    codes = [api_login(gateway, "nobody", f"guess-{i}") for i in range(21)]
    assert codes[:20] == [200] * 20 and codes[20] == 429


def test_admin_login_is_limited_per_ip_and_shares_the_api_login_budget(gateway):
    make_user("root", role=ROLE_ROOT)
    client, token = admin_client(gateway)
    codes = [admin_login(client, token, "root", f"guess-{i}").status_code for i in range(15)]
    assert 429 not in codes
    codes += [api_login(gateway, "root", f"guess-more-{i}") for i in range(5)]
    assert codes.count(429) == 0
    assert admin_login(client, token, "root", "root-password").status_code == 429  # even the right password
    assert api_login(gateway, "root", "root-password") == 429
    assert client.get("/admin/login/").status_code == 200  # the form itself stays reachable


def test_admin_login_honours_password_login_enabled(gateway):
    make_user("root", role=ROLE_ROOT)
    update_option("PasswordLoginEnabled", "false")
    propagated()
    client, token = admin_client(gateway)
    resp = admin_login(client, token, "root", "root-password")
    assert resp.status_code == 302 and "/admin/login/" in resp.headers["location"]
    assert client.get("/admin/").status_code == 302  # not logged in
    update_option("PasswordLoginEnabled", "true")
    propagated()
    client, token = admin_client(gateway)
    resp = admin_login(client, token, "root", "root-password")
    assert resp.status_code == 302 and resp.headers["location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_admin_warns_while_root_has_the_default_password(gateway):
    root = make_user("root", role=ROLE_ROOT)
    root.set_password("123456")
    root.save(update_fields=["password"])
    client, token = admin_client(gateway)
    assert admin_login(client, token, "root", "123456").status_code == 302
    assert "default password 123456" in client.get("/admin/").text
    root.set_password("a-better-one")
    root.save(update_fields=["password"])
    client, token = admin_client(gateway)
    assert admin_login(client, token, "root", "a-better-one").status_code == 302
    assert "default password 123456" not in client.get("/admin/").text


def test_ensure_root_warns_while_root_has_the_default_password(gateway):
    def ensure_root() -> str:
        done = subprocess.run([sys.executable, "manage.py", "ensure_root"], cwd=ROOT, env=gateway_env(),
                              capture_output=True, text=True, check=True, timeout=120)
        return done.stdout + done.stderr

    first = ensure_root()  # an empty users table: root/123456 is created
    assert "created root user" in first and "default password 123456" in first
    assert "default password 123456" in ensure_root()  # and again at every start until it is changed
    from accounts.models import User

    root = User.objects.get(username="root")
    root.set_password("changed-it")
    root.save(update_fields=["password"])
    assert "default password" not in ensure_root()


def test_serve_start_up_warns_while_root_has_the_default_password(tmp_path):
    from tests.serve.test_serve import serve

    for _proc, _port, _env in serve(tmp_path, WEB_WORKERS="1"):
        deadline = time.time() + 20
        while "default password 123456" not in (tmp_path / "serve.log").read_text() and time.time() < deadline:
            time.sleep(0.2)
    assert "default password 123456" in (tmp_path / "serve.log").read_text()
