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
