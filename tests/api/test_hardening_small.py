"""Smaller hardening: GitHub bound by numeric id, strong single-use email codes, Telegram bind needs
the session's state, secret options hidden, the session secret file 0600, out-of-range input is a
400, and nothing unsafe from a client or a channel reaches an upstream URL or header."""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from aiohttp import web
from django.core import mail

from accounts.models import User
from accounts.services import email as email_codes
from newapi_site.options import update_option
from tests.api.test_oauth import BOT_TOKEN, _widget
from tests.api_client import Api
from tests.conftest import ROOT, live, make_channel, make_token, make_user, propagated
from tests.fakes.gemini_upstream import FakeGemini


# -- GitHub: the numeric id, not the login ------------------------------------------------------
class FakeGitHub:
    """github.com's token endpoint and api.github.com/user, on 127.0.0.1."""

    def __init__(self) -> None:
        self.users: dict[str, dict] = {}  # code -> /user answer
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _token(self, request: web.Request) -> web.Response:
        code = (await request.json()).get("code", "")
        return web.json_response({"access_token": f"gh-{code}"} if code in self.users else {"error": "bad_verification_code"})

    async def _user(self, request: web.Request) -> web.Response:
        return web.json_response(self.users.get(request.headers.get("Authorization", "").removeprefix("Bearer gh-"), {}))

    def start(self) -> FakeGitHub:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/login/oauth/access_token", self._token)
            app.router.add_get("/user", self._user)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self


@pytest.fixture(scope="module")
def github_server() -> FakeGitHub:
    return FakeGitHub().start()


@pytest.fixture
def github(github_server, settings, db):
    settings.GITHUB_OAUTH_URL = github_server.url
    settings.GITHUB_API_URL = github_server.url
    update_option("GitHubClientId", "gh-client")
    update_option("GitHubClientSecret", "gh-secret")
    update_option("GitHubOAuthEnabled", "true")
    return github_server


def github_login(api: Api, code: str) -> dict:
    state = api.get("/api/oauth/state")["data"]
    return api.get("/api/oauth/github", {"code": code, "state": state})


def test_github_accounts_are_bound_by_numeric_id(github):
    github.users["c1"] = {"id": 4001, "login": "octo", "name": "Octo"}
    body = github_login(Api(), "c1")
    assert body["success"], body
    user = User.objects.get(pk=body["data"]["id"])
    assert user.github_id == "4001"
    # The owner renames the GitHub account; a stranger registers the freed login.
    github.users["c2"] = {"id": 4001, "login": "octo-renamed"}
    assert github_login(Api(), "c2")["data"]["id"] == user.pk
    github.users["c3"] = {"id": 9009, "login": "octo"}
    stranger = github_login(Api(), "c3")
    assert stranger["success"] and stranger["data"]["id"] != user.pk


def test_a_binding_by_login_becomes_an_id_binding_at_the_next_login(github, alice):
    User.objects.filter(pk=alice.pk).update(github_id="alice-gh")  # bound the old way
    github.users["c4"] = {"id": 777, "login": "alice-gh"}
    body = github_login(Api(), "c4")
    assert body["success"] and body["data"]["id"] == alice.pk
    assert User.objects.get(pk=alice.pk).github_id == "777"
    github.users["c5"] = {"id": 777, "login": "alice-renamed"}
    assert github_login(Api(), "c5")["data"]["id"] == alice.pk
    # Binding another user to the same GitHub account, by id or by the old login, is refused.
    github.users["c6"] = {"id": 778, "login": "bob-gh"}
    bob = make_user("bob2")
    User.objects.filter(pk=bob.pk).update(github_id="bob-gh")
    carol = make_user("carol")
    client = Api(carol, session=True)
    client.post("/api/user/login", {"username": "carol", "password": "carol-password"})
    assert github_login(client, "c6")["message"] == "该账户已被绑定"


# -- email verification codes -------------------------------------------------------------------
def test_email_codes_carry_more_than_24_bits(db):
    update_option("SMTPServer", "smtp.example.com")
    update_option("SMTPAccount", "noreply@example.com")
    codes = set()
    for i in range(3):
        assert Api().get("/api/verification", {"email": f"code{i}@example.com"})["success"]
        codes.add(re.search(r"<strong>(\w+)</strong>", mail.outbox[-1].body).group(1))
    assert len(codes) == 3
    assert all(len(c) >= 8 and int(c, 16) >= 0 for c in codes)  # hex: 32 bits and more


def test_an_email_code_is_used_once_even_by_racing_requests(db):
    hits = []
    for attempt in range(5):
        address = f"race{attempt}@example.com"
        email_codes._store("v", address, "c0de")
        barrier = threading.Barrier(8)

        def take(barrier: threading.Barrier = barrier, address: str = address) -> bool:
            barrier.wait()
            return email_codes.check_code(address, "c0de", "v", consume=True)

        with ThreadPoolExecutor(8) as pool:
            hits.append(sum(pool.map(lambda _: take(), range(8))))
    assert hits == [1] * 5
    email_codes._store("v", "wrong@example.com", "c0de")
    assert not email_codes.check_code("wrong@example.com", "guess", "v", consume=True)
    assert email_codes.check_code("wrong@example.com", "c0de", "v", consume=True)  # a wrong guess burns nothing


# -- Telegram bind ---------------------------------------------------------------------------
def test_telegram_bind_needs_the_sessions_state(db, alice):
    from rest_framework.test import APIClient

    update_option("TelegramBotToken", BOT_TOKEN)
    update_option("TelegramOAuthEnabled", "true")
    client = APIClient()
    client.post("/api/user/login", {"username": "alice", "password": "alice-password"}, format="json")
    # A page that sends the logged-in browser to the bind URL with its owner's widget data.
    resp = client.get("/api/oauth/telegram/bind", _widget(id=666, auth_date=int(time.time())))
    assert resp.status_code == 403
    resp = client.get("/api/oauth/telegram/bind", {**_widget(id=666, auth_date=int(time.time())), "state": "guessed-it!"})
    assert resp.status_code == 403
    assert not User.objects.get(pk=alice.pk).telegram_id
    state = client.get("/api/oauth/state").json()["data"]
    resp = client.get("/api/oauth/telegram/bind", {**_widget(id=666, auth_date=int(time.time())), "state": state})
    assert resp.status_code == 302 and User.objects.get(pk=alice.pk).telegram_id == "666"


# -- options ---------------------------------------------------------------------------------
def test_option_list_hides_every_secret_like_key(as_root):
    update_option("oidc.client_secret", "oidc-very-secret")
    update_option("oidc.client_id", "oidc-client")
    body = as_root.get("/api/option/")
    keys = {row["key"] for row in body["data"]}
    assert "oidc.client_id" in keys
    hidden = {k for k in keys if k.lower().endswith(("secret", "token", "key"))}
    assert hidden == set() and "oidc-very-secret" not in json.dumps(body)


# -- the session secret file -----------------------------------------------------------------
def test_session_secret_file_is_created_owner_only(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "SESSION_SECRET"}
    env.update(DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="newapi_site.settings")
    code = "import os; os.umask(0o022); import django; django.setup()"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    mode = stat.S_IMODE((tmp_path / ".session_secret").stat().st_mode)
    assert mode == 0o600
    (tmp_path / ".session_secret").chmod(0o644)  # an older install's file is tightened at the next start
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, check=True, timeout=60)
    assert stat.S_IMODE((tmp_path / ".session_secret").stat().st_mode) == 0o600


# -- out-of-range input on /api: a 400, through the real gateway ------------------------------------
def _api(gateway, user: User):
    user.access_token = uuid.uuid4().hex
    user.save(update_fields=["access_token"])
    headers = {"Authorization": user.access_token, "New-Api-User": str(user.pk)}

    def call(method: str, path: str, body: dict) -> httpx.Response:
        return httpx.request(method, f"{gateway.url}{path}", json=body, headers=headers, timeout=20)

    return call


LONG_PASSWORD = "密" * 19 + "x"  # 20 characters, 58 bytes... and over 72:
LONGER_PASSWORD = "😀" * 19  # 19 characters, 76 bytes


@live
def test_passwords_over_72_bytes_are_a_400(gateway, root_user):
    update_option("RegisterEnabled", "true")
    update_option("PasswordRegisterEnabled", "true")
    propagated()
    register = httpx.post(f"{gateway.url}/api/user/register", json={"username": "emoji", "password": LONGER_PASSWORD})
    assert register.status_code == 400 and register.json()["success"] is False
    assert httpx.post(f"{gateway.url}/api/user/register",
                      json={"username": "han", "password": LONG_PASSWORD}).json()["success"] is True
    user = make_user("pw-user")
    call = _api(gateway, user)
    resp = call("PUT", "/api/user/self", {"password": LONGER_PASSWORD, "original_password": "pw-user-password"})
    assert resp.status_code == 400
    root = _api(gateway, root_user)
    assert root("POST", "/api/user/", {"username": "newbie", "password": LONGER_PASSWORD}).status_code == 400
    assert root("PUT", "/api/user/", {"id": user.pk, "password": LONGER_PASSWORD}).status_code == 400
    assert not User.objects.filter(username__in=["emoji", "newbie"]).exists()
    login = httpx.post(f"{gateway.url}/api/user/login", json={"username": "pw-user", "password": LONGER_PASSWORD})
    assert login.status_code == 200 and login.json()["success"] is False  # simply a wrong password


@live
def test_quota_and_expiry_past_int64_are_a_400(gateway, root_user):
    user = make_user("big")
    token = make_token(user)
    call = _api(gateway, user)
    huge = 2**63
    for body in ({"name": "t", "remain_quota": huge}, {"name": "t", "expired_time": huge},
                 {"name": "t", "expired_time": -huge - 1}):
        resp = call("POST", "/api/token/", body)
        assert resp.status_code == 400, (body, resp.status_code, resp.text)
    resp = call("PUT", "/api/token/", {"id": token.pk, "name": "t", "remain_quota": huge})
    assert resp.status_code == 400
    assert call("POST", "/api/user/aff_transfer", {"quota": huge}).status_code == 400
    root = _api(gateway, root_user)
    assert root("PUT", "/api/user/", {"id": user.pk, "quota": huge}).status_code == 400
    assert root("POST", "/api/redemption/", {"name": "r", "quota": huge, "count": 1}).status_code == 400
    user.refresh_from_db()
    assert user.quota == 10_000_000


# -- upstream URLs and headers ---------------------------------------------------------------
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@live
@pytest.mark.relay
def test_a_channel_key_with_a_line_break_is_refused_before_sending(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="crlf-key\r\nX-Injected: yes")
    token = make_token(make_user("cr"))
    propagated()
    fake_upstream.reset()
    resp = httpx.post(f"{gateway.v1}/chat/completions", json=CHAT, headers={"Authorization": f"Bearer sk-{token.key}"},
                      timeout=20)
    error = resp.json()["error"]
    assert resp.status_code == 500 and error["code"] == "invalid_upstream_header", resp.text
    assert "Authorization" in error["message"] and "X-Injected" not in error["message"]
    assert fake_upstream.requests == []


@pytest.fixture(scope="module")
def gemini() -> FakeGemini:
    return FakeGemini().start()


@live
@pytest.mark.relay
def test_client_paths_cannot_carry_a_query_or_dot_segments(gateway, gemini):
    make_channel(gemini.base_url, key="gem-key", type=24, models="gemini-2.0-flash")
    token = make_token(make_user("pathy"))
    propagated()
    headers = {"Authorization": f"Bearer sk-{token.key}", "mj-api-secret": f"sk-{token.key}"}
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    for path in ("/v1/engines/gemini-2.0-flash%3Fkey=other/embeddings", "/v1/engines/%2e%2e/embeddings",
                 "/v1/chat/completions%23", "/mj/submit/imagine%3Fmode=relax", "/mj/task/%2e%2e%2f%2e%2e%2fv1%2fmodels/fetch",
                 "/suno/fetch/%2e%2e"):
        resp = httpx.post(f"{gateway.url}{path}", json=body, headers=headers, timeout=20)
        assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_path", (path, resp.text)
    assert gemini.requests == []


@live
@pytest.mark.relay
def test_a_mapped_model_name_cannot_rewrite_the_upstream_url(gateway, gemini):
    mapping = json.dumps({"gemini-2.0-flash": "gemini-2.0-flash:generateContent?key=attacker#"})
    make_channel(gemini.base_url, key="gem-key-2", type=24, models="gemini-2.0-flash", model_mapping=mapping)
    token = make_token(make_user("mapped"))
    propagated()
    gemini.requests.clear()
    chat = {"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]}
    resp = httpx.post(f"{gateway.v1}/chat/completions", json=chat, headers={"Authorization": f"Bearer sk-{token.key}"},
                      timeout=20)
    assert resp.status_code == 400 and resp.json()["error"]["code"] == "invalid_model", resp.text
    assert gemini.requests == []


@live
def test_a_realtime_channel_key_with_a_line_break_is_refused_before_dialing(gateway):
    from tests.fakes.realtime_upstream import FakeRealtime
    from tests.relay.test_realtime import MODEL, auth_kwargs, refused, ws_url

    upstream = FakeRealtime().start()
    make_channel(upstream.base_url, key="rt-key\r\nX-Injected: yes", models=MODEL)
    token = make_token(make_user("rt-crlf", quota=1_000_000))
    propagated()
    for via_subprotocol in (True, False):
        event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key, via_subprotocol)))
        assert (event["error"]["code"], code) == ("invalid_upstream_header", 4500), event
        assert "X-Injected" not in event["error"]["message"]
    assert upstream.connections == []
