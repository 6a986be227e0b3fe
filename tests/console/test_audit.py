"""Every change from /api and from the admin (bulk actions and custom views included) leaves an audit entry."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.test import Client

from accounts.models import Token, User
from billing.models import Redemption
from newapi_site.roles import ROLE_ROOT
from relay.channels import multi_key
from relay.models import Channel
from tests.api_client import Api
from tests.conftest import live, make_channel, make_user


@pytest.mark.django_db
def test_api_writes_are_recorded_without_values(alice: User) -> None:
    api = Api(alice)
    created = api.post("/api/token/", {"name": "audited", "remain_quota": 5, "expired_time": -1})
    token_id = created["data"]["id"]
    api.call("put", "/api/token/", {"id": token_id, "name": "renamed", "remain_quota": 6, "expired_time": -1})
    api.call("delete", f"/api/token/{token_id}")
    api.post("/api/token/", {"name": "x" * 99})  # refused: no entry
    api.get("/api/token/")  # a read: no entry
    entries = list(LogEntry.objects.filter(user_id=alice.pk).order_by("id"))
    assert [(e.action_flag, e.object_repr) for e in entries] == [
        (ADDITION, "POST /api/token/"),
        (CHANGE, "PUT /api/token/"),
        (DELETION, f"DELETE /api/token/{token_id}"),
    ]
    change = json.loads(entries[1].change_message)["api"]
    assert change == {"fields": ["expired_time", "id", "name", "remain_quota"], "id": token_id}
    assert "renamed" not in entries[1].change_message


@live
def test_api_writes_through_the_gateway_are_recorded(gateway) -> None:
    bob = make_user("auditee")
    bob.access_token = uuid.uuid4().hex
    bob.save(update_fields=["access_token"])
    headers = {"Authorization": bob.access_token, "New-Api-User": str(bob.pk)}
    answer = httpx.post(
        f"{gateway.url}/api/token/", json={"name": "live", "expired_time": -1}, headers=headers
    )
    assert answer.json()["success"] is True
    entry = LogEntry.objects.get(user_id=bob.pk)
    assert (entry.action_flag, entry.object_repr) == (ADDITION, "POST /api/token/")
    assert Token.objects.filter(user_id=bob.pk, name="live").exists()


@pytest.mark.django_db
def test_admin_bulk_action_and_the_browsable_trail() -> None:
    root = make_user("auditor", role=ROLE_ROOT)
    channels = [Channel.objects.create(name=f"c{i}", type=1, key=f"k{i}", models="m") for i in range(3)]
    client = Client()
    client.force_login(root)
    client.post(
        "/admin/relay/channel/",
        {"action": "disable_channels", "_selected_action": [c.pk for c in channels[:2]]},
    )
    bulk = LogEntry.objects.get(user_id=root.pk, object_repr__startswith="disable_channels")
    assert json.loads(bulk.change_message) == {
        "action": "disable_channels",
        "ids": [str(c.pk) for c in channels[:2]],
        "all": False,
    }
    trail = client.get("/admin/admin/logentry/")
    assert trail.status_code == 200 and "disable_channels (2)" in trail.content.decode()
    assert client.get(f"/admin/admin/logentry/{bulk.pk}/delete/").status_code == 403


def _root_client(name: str) -> tuple[Client, User]:
    root = make_user(name, role=ROLE_ROOT)
    client = Client()
    client.force_login(root)
    return client, root


@pytest.mark.django_db
def test_batch_created_codes_are_recorded_without_their_keys() -> None:
    client, root = _root_client("codemaker")
    answer = client.post(
        "/admin/billing/redemption/create-codes/", {"name": "promo", "count": 3, "quota": 1000}
    )
    assert answer.status_code == 200
    codes = list(Redemption.objects.filter(name="promo").order_by("id"))
    assert len(codes) == 3
    entry = LogEntry.objects.get(user_id=root.pk)
    assert (entry.action_flag, entry.object_repr, entry.content_type.model) == (
        ADDITION,
        "create_codes",
        "redemption",
    )
    assert json.loads(entry.change_message) == {
        "action": "create_codes",
        "count": 3,
        "ids": [c.pk for c in codes],
    }
    assert not any(c.key in entry.change_message for c in codes)
    client.post("/admin/billing/redemption/create-codes/", {"name": "", "count": 101, "quota": 1})  # refused
    assert LogEntry.objects.filter(user_id=root.pk).count() == 1


@pytest.mark.django_db
def test_enabling_one_key_of_a_channel_is_recorded() -> None:
    info = multi_key.new_info(2, "polling")
    info["multi_key_status_list"] = {1: multi_key.KEY_AUTO_DISABLED}
    channel = Channel.objects.create(name="multi", type=1, key="k-one\nk-two", models="m", channel_info=info)
    client, root = _root_client("keyfixer")
    assert client.post(f"/admin/relay/channel/{channel.pk}/keys/1/enable/").status_code == 302
    entry = LogEntry.objects.get(user_id=root.pk)
    assert (entry.action_flag, entry.object_id, entry.content_type.model) == (
        CHANGE,
        str(channel.pk),
        "channel",
    )
    assert json.loads(entry.change_message) == {"action": "enable_key", "index": 1}
    assert "k-two" not in entry.change_message
    client.post(f"/admin/relay/channel/{channel.pk}/keys/7/enable/")  # no such key: nothing changed
    assert LogEntry.objects.filter(user_id=root.pk).count() == 1


@pytest.mark.django_db
def test_the_channel_editors_test_button_is_recorded(fake_upstream) -> None:
    channel = make_channel(fake_upstream.base_url, key="tested-secret")
    client, root = _root_client("tester")
    answer = client.post(f"/admin-channel/{channel.pk}/test", {"model": "gpt-4o-mini"})
    assert answer.json()["success"] is True
    entry = LogEntry.objects.get(user_id=root.pk)
    assert (entry.object_id, entry.object_repr) == (str(channel.pk), f"test: {channel}")
    assert json.loads(entry.change_message) == {"action": "test", "model": "gpt-4o-mini", "success": True}
    trail = client.get("/admin/admin/logentry/").content.decode()
    assert f"test: {channel}" in trail
