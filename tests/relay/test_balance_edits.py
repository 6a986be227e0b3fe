"""Balance edits reach the ledger at once: the very next relay request sees a raised or lowered
token or user balance, whether it was changed by PUT /api/token/, PUT /api/user/, the console's
change form or a redemption code.

Each "lowered" case first makes the gateway trust the balance (over 100x the estimate, seen less
than two seconds ago: no hold taken), so the edit must also drop that shortcut.
"""

from __future__ import annotations

import httpx
import pytest
from django.test import Client

from accounts.models import Token, User
from billing.models import Redemption
from newapi_site.roles import ROLE_ROOT
from tests.api_client import Api
from tests.conftest import live, make_channel, make_token, make_user

pytestmark = [live, pytest.mark.relay]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


def chat(gateway, token: Token) -> httpx.Response:
    return httpx.post(
        f"{gateway.v1}/chat/completions", json=CHAT, headers={"Authorization": f"Bearer sk-{token.key}"}, timeout=20
    )


def refused(response: httpx.Response) -> bool:
    """A quota refusal: 401 for an exhausted token (as New API), 403 for an insufficient balance."""
    error = response.json()["error"]
    return response.status_code in (401, 403) and "quota" in f"{error['code']} {error['message']}"


def trusted(gateway, token: Token) -> None:
    """Two answered requests: the second one ran on a balance the gateway had just seen."""
    for _ in range(2):
        assert chat(gateway, token).status_code == 200


def token_body(api: Api, token: Token, **changes: object) -> dict:
    shown = api.get(f"/api/token/{token.pk}")["data"]
    return {**shown, **changes}


@pytest.fixture
def channel(fake_upstream):
    return make_channel(fake_upstream.base_url)


def test_raising_an_exhausted_token_works_at_once(gateway, channel):
    user = make_user("rita")
    token = make_token(user, unlimited_quota=False, remain_quota=0)
    assert refused(chat(gateway, token))  # the ledger now holds the token's 0
    api = Api(user)
    body = api.put("/api/token/", token_body(api, token, remain_quota=1_000_000))
    assert body["success"], body
    assert chat(gateway, token).status_code == 200


def test_lowering_a_token_is_enforced_at_once(gateway, channel):
    user = make_user("sam")
    token = make_token(user, unlimited_quota=False, remain_quota=10_000_000)
    trusted(gateway, token)
    api = Api(user)
    assert api.put("/api/token/", token_body(api, token, remain_quota=10))["success"]
    assert refused(chat(gateway, token))
    # and back up again
    assert api.put("/api/token/", token_body(api, token, remain_quota=10_000_000))["success"]
    assert chat(gateway, token).status_code == 200


def test_token_turning_limited_uses_its_balance(gateway, channel):
    user = make_user("tess")
    token = make_token(user, unlimited_quota=False, remain_quota=5_000_000)
    assert chat(gateway, token).status_code == 200  # the ledger now mirrors the token
    api = Api(user)
    assert api.put("/api/token/", token_body(api, token, unlimited_quota=True))["success"]
    assert chat(gateway, token).status_code == 200
    assert api.put("/api/token/", token_body(api, token, unlimited_quota=False, remain_quota=5))["success"]
    assert refused(chat(gateway, token))


def test_admin_user_quota_edit_is_enforced_at_once(gateway, channel):
    admin = make_user("ursula", role=ROLE_ROOT)
    user = make_user("vic")
    token = make_token(user)
    trusted(gateway, token)
    api = Api(admin)
    assert api.put("/api/user/", {"id": user.pk, "quota": 0})["success"]
    response = chat(gateway, token)
    assert refused(response) and response.json()["error"]["code"] == "insufficient_user_quota"
    assert api.put("/api/user/", {"id": user.pk, "quota": 10_000_000})["success"]
    assert chat(gateway, token).status_code == 200


def _user_form(user: User, quota: int) -> dict[str, object]:
    user.refresh_from_db()
    return {
        "username": user.username, "display_name": user.display_name or "", "email": user.email or "",
        "password": "", "role": user.role, "status": user.status, "group": user.group,
        "quota": quota, "initial-quota": user.quota,
    }


def test_console_user_quota_edit_is_enforced_at_once(gateway, channel):
    root = make_user("wendy", role=ROLE_ROOT)
    user = make_user("xena")
    token = make_token(user)
    trusted(gateway, token)
    console = Client()
    console.force_login(root)
    url = f"/admin/accounts/user/{user.pk}/change/"
    assert console.post(url, _user_form(user, 0)).status_code == 302
    assert refused(chat(gateway, token))
    assert console.post(url, _user_form(user, 10_000_000)).status_code == 302
    assert chat(gateway, token).status_code == 200


def test_console_token_quota_edit_is_enforced_at_once(gateway, channel):
    user = make_user("yuri")
    token = make_token(user, unlimited_quota=False, remain_quota=10_000_000)
    trusted(gateway, token)
    console = Client()
    console.force_login(make_user("zoe", role=ROLE_ROOT))
    token.refresh_from_db()
    form = {"name": token.name, "status": "1", "remain_quota": "10", "initial-remain_quota": str(token.remain_quota),
            "expired_time": "", "group": ""}
    assert console.post(f"/admin/accounts/token/{token.pk}/change/", form).status_code == 302
    assert refused(chat(gateway, token))


def test_redemption_credits_at_once(gateway, channel):
    user = make_user("amy", quota=0)
    token = make_token(user)
    assert refused(chat(gateway, token))  # the ledger now holds the user's 0
    Redemption.objects.create(key="r" * 32, name="gift", quota=5_000_000)
    assert Api(user).post("/api/user/topup", {"key": "r" * 32})["success"]
    assert chat(gateway, token).status_code == 200
