"""Authorization matrix: anonymous, alice, bob, admin and root against every /api route.

Every forbidden cell must be refused (401 when not logged in, 200 `success:false` "权限不足" for a
too-low role); every allowed GET must pass the gate; no response ever carries a channel key.
"""

from __future__ import annotations

import pytest

from tests.api_client import Api
from tests.conftest import make_channel, make_token

PUBLIC, USER, ADMIN, ROOT = 0, 1, 10, 100
ROLE_OF = {"anonymous": 0, "alice": 1, "bob": 1, "admin": 10, "root": 100}
CHANNEL_KEY = "matrix-secret-channel-key"

# (method, path, minimum role). {channel}, {user}, {token}, {redemption} are filled per test.
ROUTES = [
    ("get", "/api/status", PUBLIC),
    ("get", "/api/setup", PUBLIC),
    ("get", "/api/notice", PUBLIC),
    ("get", "/api/about", PUBLIC),
    ("get", "/api/home_page_content", PUBLIC),
    ("get", "/api/pricing", PUBLIC),
    ("get", "/api/user/groups", PUBLIC),
    ("get", "/api/log/token?key=sk-nothing", PUBLIC),
    ("get", "/api/oauth/state", PUBLIC),
    ("get", "/api/models", USER),
    ("get", "/api/user/self", USER),
    ("put", "/api/user/self", USER),
    ("delete", "/api/user/self", USER),
    ("get", "/api/user/self/groups", USER),
    ("get", "/api/user/models", USER),
    ("get", "/api/user/token", USER),
    ("get", "/api/user/aff", USER),
    ("post", "/api/user/aff_transfer", USER),
    ("post", "/api/user/topup", USER),
    ("post", "/api/user/amount", USER),
    ("post", "/api/user/pay", USER),
    ("put", "/api/user/setting", USER),
    ("get", "/api/token/", USER),
    ("post", "/api/token/", USER),
    ("put", "/api/token/", USER),
    ("get", "/api/token/search", USER),
    ("get", "/api/token/{token}", USER),
    ("delete", "/api/token/{token}", USER),
    ("get", "/api/log/self", USER),
    ("get", "/api/log/self/stat", USER),
    ("get", "/api/log/self/search?keyword=2", USER),
    ("get", "/api/data/self", USER),
    ("get", "/api/oauth/email/bind?email=a@b.c&code=x", USER),
    ("get", "/api/status/test", ADMIN),
    ("get", "/api/user/", ADMIN),
    ("post", "/api/user/", ADMIN),
    ("put", "/api/user/", ADMIN),
    ("get", "/api/user/search?keyword=a", ADMIN),
    ("post", "/api/user/manage", ADMIN),
    ("get", "/api/user/{user}", ADMIN),
    ("delete", "/api/user/{user}", ADMIN),
    ("get", "/api/group/", ADMIN),
    ("get", "/api/channel/", ADMIN),
    ("post", "/api/channel/", ADMIN),
    ("put", "/api/channel/", ADMIN),
    ("get", "/api/channel/search?keyword=matrix", ADMIN),
    ("get", "/api/channel/models", ADMIN),
    ("get", "/api/channel/models_enabled", ADMIN),
    ("get", "/api/channel/{channel}", ADMIN),
    ("delete", "/api/channel/{channel}", ADMIN),
    ("delete", "/api/channel/disabled", ADMIN),
    ("post", "/api/channel/batch", ADMIN),
    ("post", "/api/channel/batch/tag", ADMIN),
    ("put", "/api/channel/tag", ADMIN),
    ("post", "/api/channel/tag/enabled", ADMIN),
    ("post", "/api/channel/tag/disabled", ADMIN),
    ("post", "/api/channel/fix", ADMIN),
    ("get", "/api/channel/fetch_models/{channel}", ADMIN),
    ("post", "/api/channel/fetch_models", ADMIN),
    ("get", "/api/redemption/", ADMIN),
    ("post", "/api/redemption/", ADMIN),
    ("put", "/api/redemption/", ADMIN),
    ("get", "/api/redemption/search?keyword=a", ADMIN),
    ("get", "/api/redemption/{redemption}", ADMIN),
    ("delete", "/api/redemption/{redemption}", ADMIN),
    ("get", "/api/log/", ADMIN),
    ("delete", "/api/log/?target_timestamp=1", ADMIN),
    ("get", "/api/log/stat", ADMIN),
    ("get", "/api/log/search?keyword=2", ADMIN),
    ("get", "/api/data/", ADMIN),
    ("get", "/api/option/", ROOT),
    ("put", "/api/option/", ROOT),
    ("post", "/api/option/rest_model_ratio", ROOT),
]


@pytest.fixture
def world(alice, bob, admin_user, root_user, fake_upstream):
    from billing.models import Redemption

    channel = make_channel("http://127.0.0.1:9", key=CHANNEL_KEY, name="matrix", tag="t")
    token = make_token(alice)
    code = Redemption.objects.create(user_id=admin_user.pk, key="a" * 32, name="code")
    ids = {"channel": channel.pk, "user": alice.pk, "token": token.pk, "redemption": code.pk}
    clients = {"anonymous": Api(), "alice": Api(alice), "bob": Api(bob), "admin": Api(admin_user), "root": Api(root_user)}
    return ids, clients


def _denied(api: Api, body: dict, persona: str) -> bool:
    if persona == "anonymous":
        return api.status == 401 and body.get("success") is False
    return api.status == 200 and body == {"success": False, "message": "权限不足"}


@pytest.mark.parametrize("persona", ["anonymous", "alice", "bob", "admin"])
def test_forbidden_cells_are_denied(world, persona):
    ids, clients = world
    api = clients[persona]
    checked = 0
    for method, path, need in ROUTES:
        if ROLE_OF[persona] >= need or need == PUBLIC:
            continue
        body = api.call(method, path.format(**ids), {} if method != "get" else None)
        assert _denied(api, body, persona), (persona, method, path, api.status, body)
        checked += 1
    assert checked > 0


@pytest.mark.parametrize("persona", ["anonymous", "alice", "bob", "admin", "root"])
def test_allowed_reads_pass_the_gate_and_never_leak_channel_keys(world, persona):
    ids, clients = world
    api = clients[persona]
    for method, path, need in ROUTES:
        if method != "get" or ROLE_OF[persona] < need or "/user/token" in path or "fetch_models" in path:
            continue
        body = api.call(method, path.format(**ids))
        assert api.status != 401 and body.get("message") != "权限不足", (persona, path, body)
        assert CHANNEL_KEY not in str(body), (persona, path)


def test_anonymous_can_read_public_routes(world):
    _ids, clients = world
    for method, path, need in ROUTES:
        if need == PUBLIC:
            body = clients["anonymous"].call(method, path)
            assert clients["anonymous"].status == 200 and body.get("success") is True, path


def test_bob_cannot_reach_alices_token_by_id(world):
    ids, clients = world
    bob = clients["bob"]
    for method in ("get", "delete"):
        body = bob.call(method, f"/api/token/{ids['token']}")
        assert body["success"] is False
    body = bob.put("/api/token/", {"id": ids["token"], "name": "mine now"})
    assert body["success"] is False
    from accounts.models import Token

    token = Token.objects.get(pk=ids["token"])
    assert token.deleted_at is None and token.name == "alice-token"
    assert token.key not in str(bob.get("/api/token/")) and token.key not in str(bob.get("/api/log/self"))
