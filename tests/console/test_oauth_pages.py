"""The OAuth callback pages at New API's paths: a hop to our own site, then sign-in, sign-up or binding."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import pytest
from django.test import Client

from accounts.models import User
from newapi_site.options import update_option
from tests.api.fake_oauth import FakeOAuth


@pytest.fixture(scope="module")
def provider() -> FakeOAuth:
    return FakeOAuth().start()


@pytest.fixture
def oidc(provider, db):
    update_option("oidc.client_id", "cid")
    update_option("oidc.client_secret", "csecret")
    update_option("oidc.authorization_endpoint", provider.url + "/authorize")
    update_option("oidc.token_endpoint", provider.url + "/token")
    update_option("oidc.user_info_endpoint", provider.url + "/userinfo")
    update_option("oidc.enabled", "true")
    return provider


def start(client: Client) -> str:
    """The login page's OIDC button: to the provider with a state kept in our session."""
    answer = client.get("/oauth/start/oidc")
    assert answer.status_code == 302
    query = parse_qs(urlparse(answer["Location"]).query)
    assert query["redirect_uri"] == ["http://testserver/oauth/oidc"]
    return query["state"][0]


def test_login_page_offers_the_enabled_provider(oidc) -> None:
    assert 'href="/oauth/start/oidc"' in Client().get("/login").content.decode()
    assert 'href="/oauth/start/github"' not in Client().get("/login").content.decode()


def test_callback_signs_up_then_binds(oidc, alice: User) -> None:
    oidc.users["page-1"] = {"sub": "page-sub", "email": "p@example.com", "preferred_username": "paula"}
    client = Client()
    state = start(client)
    hop = client.get("/oauth/oidc", {"code": "page-1", "state": state})
    assert hop.status_code == 200 and b"finish=1" in hop.content  # the provider's redirect carries no session
    done = client.get("/oauth/oidc", {"code": "page-1", "state": state, "finish": "1"})
    assert done.status_code == 302 and done["Location"] == "/detail"
    assert "Signed in as paula" in client.get("/detail").content.decode()
    # A forged state is refused and signs nobody in.
    stranger = Client()
    start(stranger)
    refused = stranger.get("/oauth/oidc", {"code": "page-1", "state": "forged", "finish": "1"})
    assert refused["Location"] == "/login" and stranger.get("/detail").status_code == 302
    # Signed in already: the callback binds the identity to the current account.
    oidc.users["page-2"] = {"sub": "alice-sub", "email": "a2@example.com"}
    mine = Client()
    mine.post("/login", {"username": "alice", "password": "alice-password"})
    state = start(mine)
    bound = mine.get("/oauth/oidc", {"code": "page-2", "state": state, "finish": "1"})
    assert bound["Location"] == "/setting"
    assert User.objects.get(pk=alice.pk).oidc_id == "alice-sub"


@pytest.fixture
def wechat(provider, db):
    update_option("WeChatServerAddress", provider.url)
    update_option("WeChatServerToken", "wechat-server-token")
    update_option("WeChatAuthEnabled", "true")
    return provider


def test_wechat_code_signs_in_from_the_login_page(wechat) -> None:
    client = Client()
    assert 'action="/oauth/wechat"' in client.get("/login").content.decode()
    assert client.get("/oauth/wechat", {"code": "bad"})["Location"] == "/login"
    assert client.get("/oauth/wechat", {"code": "good"})["Location"] == "/detail"
    assert User.objects.get(wechat_id="wx-openid-1").username in client.get("/detail").content.decode()


def test_wechat_bind_on_the_settings_page(wechat, alice: User) -> None:
    client = Client()
    client.post("/login", {"username": "alice", "password": "alice-password"})
    assert 'value="wechat_bind"' in client.get("/setting").content.decode()
    client.post("/setting", {"action": "wechat_bind", "code": "good"})
    assert User.objects.get(pk=alice.pk).wechat_id == "wx-openid-1"
