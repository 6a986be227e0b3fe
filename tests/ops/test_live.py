"""Through the real gateway: the playground (session auth, user-only billing), channel tests that
take a channel out of routing, and /api/mj/self reaching Django rather than the relay."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest

from accounts.models import User
from billing.models import Log
from newapi_site.options import update_option
from relay.channels import tester as channel_test
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.relay]
CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
CHAT_QUOTA = 3  # (11 + 7×4) × 0.075, see tests/relay/test_openai_sdk.py


@pytest.fixture(autouse=True)
def _restore_options():
    """The gateway caches options: put back what these tests change (a DB flush tells it nothing)."""
    from newapi_site.option_defaults import DEFAULT_OPTIONS

    yield
    for name in ("GroupRatio", "UserUsableGroups", "AutomaticDisableChannelEnabled", "AutomaticEnableChannelEnabled"):
        update_option(name, DEFAULT_OPTIONS[name])
    propagated()


def login(gateway, user: User) -> httpx.Client:
    client = httpx.Client(base_url=gateway.url, timeout=30)
    body = client.post("/api/user/login", json={"username": user.username, "password": f"{user.username}-password"}).json()
    assert body["success"], body
    client.headers["New-Api-User"] = str(user.pk)
    return client


def test_playground_bills_the_user_not_a_token(gateway, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="pg-key")
    user = make_user("pgalice", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000)
    client = login(gateway, user)
    response = client.post("/pg/chat/completions", json=CHAT)
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Hello from the fake upstream!"
    assert fake_upstream.requests_for("pg-key")[-1].path == "/v1/chat/completions"
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    channel.refresh_from_db()
    assert user.quota == 1_000_000 - CHAT_QUOTA and user.used_quota == CHAT_QUOTA
    assert token.remain_quota == 500_000 and token.used_quota == 0
    assert channel.used_quota == CHAT_QUOTA
    log = Log.objects.get(user_id=user.pk)
    assert (log.token_id, log.token_name, log.quota, log.group) == (0, "playground-default", CHAT_QUOTA, "default")


def test_playground_stream(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="pg-stream")
    user = make_user("pgstream", quota=1_000_000)
    client = login(gateway, user)
    with client.stream("POST", "/pg/chat/completions", json={**CHAT, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        text = "".join(response.iter_text())
    assert "Hello" in text and text.rstrip().endswith("data: [DONE]")
    settle()
    user.refresh_from_db()
    assert user.quota < 1_000_000 and Log.objects.get(user_id=user.pk).token_id == 0


def test_playground_refuses_api_keys_access_tokens_and_strangers(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="pg-auth")
    user = make_user("pgauth", quota=1_000_000)
    token = make_token(user)
    user.access_token = uuid.uuid4().hex
    user.save(update_fields=["access_token"])
    anon = httpx.Client(base_url=gateway.url, timeout=30)
    by_access_token = anon.post("/pg/chat/completions", json=CHAT,
                                headers={"Authorization": user.access_token, "New-Api-User": str(user.pk)})
    assert by_access_token.status_code == 400
    assert by_access_token.json()["error"]["code"] == "access_token_not_supported"
    by_api_key = anon.post("/pg/chat/completions", json=CHAT, headers={"Authorization": f"Bearer sk-{token.key}"})
    assert by_api_key.status_code == 401 and "error" in by_api_key.json()
    assert anon.post("/pg/chat/completions", json=CHAT).status_code == 401
    client = login(gateway, user)
    del client.headers["New-Api-User"]
    assert client.post("/pg/chat/completions", json=CHAT).status_code == 401
    client.headers["New-Api-User"] = str(user.pk + 1000)
    assert client.post("/pg/chat/completions", json=CHAT).status_code == 401
    client.headers["New-Api-User"] = str(user.pk)
    missing = client.post("/pg/chat/completions", json={"messages": CHAT["messages"]})
    assert missing.status_code == 400 and missing.json()["error"]["code"] == "model_required"
    settle()
    user.refresh_from_db()
    assert user.quota == 1_000_000


def test_playground_group_choice(gateway, fake_upstream):
    update_option("GroupRatio", json.dumps({"default": 1, "vip": 2, "secret": 1}))
    update_option("UserUsableGroups", json.dumps({"default": "默认", "vip": "VIP"}))
    propagated()
    vip = make_channel(fake_upstream.base_url, key="pg-vip", group="vip")
    user = make_user("pggroup", quota=1_000_000)
    client = login(gateway, user)
    response = client.post("/pg/chat/completions", json={**CHAT, "group": "vip"})
    assert response.status_code == 200, response.text
    sent = fake_upstream.requests_for("pg-vip")[-1].body
    assert "group" not in sent  # our field, never forwarded
    denied = client.post("/pg/chat/completions", json={**CHAT, "group": "secret"})
    assert denied.status_code == 403 and denied.json()["error"]["code"] == "group_not_allowed"
    none = client.post("/pg/chat/completions", json=CHAT)  # default group: no channel there
    assert none.status_code == 503
    settle()
    log = Log.objects.get(user_id=user.pk)
    assert (log.group, log.token_name, log.channel_id, log.quota) == ("vip", "playground-vip", vip.pk, 2 * CHAT_QUOTA)


def test_failed_channel_test_takes_the_channel_out_of_routing(gateway):
    from tests.ops.fake_ops import FakeOps

    fake = FakeOps().start()
    update_option("AutomaticDisableChannelEnabled", "true")
    propagated()
    channel = make_channel(fake.base_url, key="routed")
    token = make_token(make_user("routeuser"))
    client = httpx.Client(base_url=gateway.v1, timeout=30, headers={"Authorization": f"Bearer sk-{token.key}"})
    assert client.post("/chat/completions", json=CHAT).status_code == 200
    fake.broken = True
    result = channel_test.test_channel_sync(channel.pk)
    assert result.status_change == "disabled"
    propagated()
    before = len(fake.requests)
    gone = client.post("/chat/completions", json=CHAT)
    assert gone.status_code == 503 and gone.json()["error"]["code"] == "model_not_available"
    assert len(fake.requests) == before  # the gateway no longer chose it
    fake.broken = False
    update_option("AutomaticEnableChannelEnabled", "true")
    assert channel_test.test_channel_sync(channel.pk).status_change == "enabled"
    propagated()
    assert client.post("/chat/completions", json=CHAT).status_code == 200


def test_api_mj_self_is_served_by_django(gateway):
    user = make_user("mjlister")
    client = login(gateway, user)
    body = client.get("/api/mj/self").json()
    assert body == {"success": True, "message": "", "data": []}
