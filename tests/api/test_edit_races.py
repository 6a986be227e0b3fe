"""Edits write only what they change: a charge, top-up, ban, auto-disable or transfer made while
an edit is in flight survives it.

The race is made deterministic with a row lock: this test changes the row in an open transaction,
the /api request (on another thread and connection) reads the row as it was, then waits on the
lock when it writes; the test commits once the request is waiting, and the request's write lands
on top of the committed change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from django.db import connection, connections, transaction
from django.db.models import F
from django.utils import timezone

from accounts.models import Token, User
from newapi_site.roles import USER_DISABLED
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, Ability, Channel
from tests.api_client import Api
from tests.conftest import live, make_channel, make_token

pytestmark = live

_WAITING = {
    # a backend waiting for a lock this connection holds (other test runs share the server)
    "postgresql": "SELECT count(*) FROM pg_locks WHERE NOT granted AND pg_backend_pid() = ANY(pg_blocking_pids(pid))",
    "mysql": "SELECT count(*) FROM information_schema.innodb_trx WHERE trx_state = 'LOCK WAIT'",
}


def _wait_for_a_blocked_writer(timeout: float = 5.0) -> bool:
    sql = _WAITING[connection.vendor]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with connection.cursor() as cursor:
            cursor.execute(sql)
            if cursor.fetchone()[0]:
                return True
        time.sleep(0.02)
    return False


def during_change(change: Callable[[], None], request: Callable[[], dict]) -> dict:
    """Run `request` while `change` is written but not committed; commit when the request waits."""
    if connection.vendor not in _WAITING:
        pytest.skip("needs row locks (PostgreSQL or MySQL)")
    result: dict = {}

    def run() -> None:
        try:
            result["body"] = request()
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    with transaction.atomic():
        change()
        thread.start()
        # The request has read the old row and now waits for ours (it never waits at all if it
        # writes nothing: then the timeout just lets it finish first).
        _wait_for_a_blocked_writer()
    thread.join(30)
    assert "body" in result, "the request did not finish"
    return result["body"]


def test_self_edit_keeps_a_concurrent_charge_ban_and_aff_transfer(alice):
    User.objects.filter(pk=alice.pk).update(aff_quota=1_000_000)
    api = Api(alice)

    def meanwhile() -> None:
        # a top-up, an aff transfer and a ban by an admin, all while the edit is in flight
        User.objects.filter(pk=alice.pk).update(
            quota=F("quota") + 1_000_000, aff_quota=0, status=USER_DISABLED, used_quota=F("used_quota") + 7
        )

    body = during_change(meanwhile, lambda: api.put("/api/user/self", {"display_name": "Alice B."}))
    assert body["success"], body
    alice.refresh_from_db()
    assert (alice.display_name, alice.quota, alice.aff_quota, alice.status, alice.used_quota) == (
        "Alice B.", 11_000_000, 0, USER_DISABLED, 7,
    )


def test_admin_user_edit_keeps_a_concurrent_charge_and_password_change(admin_user, alice):
    api = Api(admin_user)
    alice.set_password("changed-meanwhile")
    new_hash = alice.password

    def meanwhile() -> None:
        User.objects.filter(pk=alice.pk).update(quota=F("quota") - 300, status=USER_DISABLED, password=new_hash)

    body = during_change(meanwhile, lambda: api.put("/api/user/", {"id": alice.pk, "display_name": "A"}))
    assert body["success"], body
    alice.refresh_from_db()
    assert (alice.display_name, alice.quota, alice.status) == ("A", 10_000_000 - 300, USER_DISABLED)
    assert alice.check_password("changed-meanwhile")


def test_admin_quota_edit_is_applied_against_the_value_it_replaces(admin_user, alice):
    api = Api(admin_user)
    body = api.put("/api/user/", {"id": alice.pk, "quota": 5_000_000})
    assert body["success"] and body["data"]["quota"] == 5_000_000
    from billing.models import LOG_MANAGE, Log

    assert Log.objects.get(user_id=alice.pk, type=LOG_MANAGE).content == "管理员将用户额度从 ＄20.000000 额度修改为 ＄10.000000 额度"


def test_manage_action_writes_only_its_column(admin_user, alice):
    api = Api(admin_user)

    def meanwhile() -> None:  # root deletes her meanwhile
        User.objects.filter(pk=alice.pk).update(quota=F("quota") + 5, deleted_at=timezone.now())

    body = during_change(meanwhile, lambda: api.post("/api/user/manage", {"id": alice.pk, "action": "disable"}))
    assert body["success"], body
    alice.refresh_from_db()
    assert (alice.status, alice.quota) == (USER_DISABLED, 10_000_005) and alice.deleted_at is not None


def test_aff_transfer_is_one_conditional_update(alice):
    User.objects.filter(pk=alice.pk).update(aff_quota=600_000)
    Api(alice)  # issues alice's access token
    alice.refresh_from_db()
    results: list[dict] = []

    def transfer() -> None:
        from rest_framework.test import APIClient

        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=alice.access_token, HTTP_NEW_API_USER=str(alice.pk))
        try:
            results.append(client.post("/api/user/aff_transfer", {"quota": 500_000}, format="json").json())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=transfer) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(1 for r in results if r.get("success")) == 1, results
    alice.refresh_from_db()
    assert (alice.quota, alice.aff_quota) == (10_500_000, 100_000)


def test_token_edit_keeps_concurrent_spending(alice):
    token = make_token(alice, unlimited_quota=False, remain_quota=1000)
    api = Api(alice)
    shown = api.get(f"/api/token/{token.pk}")["data"]

    def meanwhile() -> None:  # the billing writer settles a request
        Token.objects.filter(pk=token.pk).update(
            remain_quota=F("remain_quota") - 100, used_quota=F("used_quota") + 100, accessed_time=12345
        )

    body = during_change(meanwhile, lambda: api.put("/api/token/", {**shown, "name": "renamed"}))
    assert body["success"], body
    token.refresh_from_db()
    assert (token.name, token.remain_quota, token.used_quota, token.accessed_time) == ("renamed", 900, 100, 12345)


def test_channel_edit_keeps_a_concurrent_auto_disable(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, name="c1")
    api = as_admin

    def meanwhile() -> None:  # relay/channels/health.py disables it after an upstream 401
        Channel.objects.filter(pk=channel.pk).update(status=CHANNEL_AUTO_DISABLED, response_time=77)

    body = during_change(meanwhile, lambda: api.put("/api/channel/", {"id": channel.pk, "name": "renamed", "priority": 3}))
    assert body["success"], body
    channel.refresh_from_db()
    assert (channel.name, channel.priority, channel.status, channel.response_time) == (
        "renamed", 3, CHANNEL_AUTO_DISABLED, 77,
    )
    # the routing rows follow the row's real status, not the one the edit had read
    assert not Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()


def test_tag_edit_keeps_a_concurrent_auto_disable(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, name="t1", tag="grp")

    def meanwhile() -> None:
        Channel.objects.filter(pk=channel.pk).update(status=CHANNEL_AUTO_DISABLED)

    body = during_change(meanwhile, lambda: as_admin.put("/api/channel/tag", {"tag": "grp", "priority": 9}))
    assert body["success"], body
    channel.refresh_from_db()
    assert (channel.priority, channel.status) == (9, CHANNEL_AUTO_DISABLED)


# -- who may send a stored channel key somewhere else -----------------------------------------
def test_admin_cannot_point_a_channel_elsewhere_without_a_new_key(as_admin, as_root, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="sk-stored-secret", name="c")
    for change in ({"base_url": "http://attacker.example"}, {"type": 14}):
        body = as_admin.put("/api/channel/", {"id": channel.pk, **change})
        assert body["success"] is False, change
    channel.refresh_from_db()
    assert (channel.base_url, channel.type, channel.key) == (fake_upstream.base_url, 1, "sk-stored-secret")
    # the same edit with a key of their own is fine: the stored key is not sent anywhere new
    body = as_admin.put("/api/channel/", {"id": channel.pk, "base_url": "http://other.example", "key": "sk-mine"})
    assert body["success"], body
    channel.refresh_from_db()
    assert (channel.base_url, channel.key) == ("http://other.example", "sk-mine")
    # root may move a channel and keep its key; an unchanged base_url in a full edit is no move
    assert as_root.put("/api/channel/", {"id": channel.pk, "base_url": "http://third.example"})["success"]
    assert as_admin.put("/api/channel/", {"id": channel.pk, "base_url": "http://third.example", "name": "x"})["success"]


def test_admin_cannot_move_a_vertex_region(as_admin, as_root):
    sa = '{"type": "service_account", "project_id": "p"}'
    channel = Channel.objects.create(type=41, key=sa, other="us-east5", models="gemini-1.5-pro", name="vx")
    body = as_admin.put("/api/channel/", {"id": channel.pk, "other": "attacker.example/x?"})
    assert body["success"] is False
    channel.refresh_from_db()
    assert channel.other == "us-east5"
    assert as_root.put("/api/channel/", {"id": channel.pk, "other": "europe-west1"})["success"]


def test_channel_status_toggle_still_works(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, name="c")
    assert as_admin.put("/api/channel/", {"id": channel.pk, "status": 2})["success"]
    channel.refresh_from_db()
    assert channel.status == 2
    assert as_admin.put("/api/channel/", {"id": channel.pk, "status": CHANNEL_ENABLED})["success"]
    channel.refresh_from_db()
    assert channel.status == CHANNEL_ENABLED and Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()


def test_admin_cannot_delete_logs(as_admin, as_root):
    from billing.models import Log

    Log.objects.create(user_id=1, type=2, content="x", created_at=100)
    assert as_admin.delete("/api/log/?target_timestamp=200")["success"] is False
    assert Log.objects.count() == 1
    assert as_root.delete("/api/log/?target_timestamp=200")["data"] == 1
