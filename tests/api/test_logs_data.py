"""/api/log/*, /api/data/*: admin sees all (with channel names), users see only their own, sanitised."""

from __future__ import annotations

import json
import time

from billing.models import Log, QuotaData
from tests.conftest import make_channel, make_token


def _log(user, **fields) -> Log:
    fields.setdefault("type", 2)
    fields.setdefault("created_at", int(time.time()))
    return Log.objects.create(user_id=user.pk, username=user.username, **fields)


def test_admin_list_filters_and_channel_name(as_admin, alice, bob, fake_upstream):
    ch = make_channel(fake_upstream.base_url, key="k", name="main-channel")
    now = int(time.time())
    _log(alice, model_name="gpt-4o", channel_id=ch.pk, quota=10, token_name="t1", group="default")
    _log(alice, model_name="gpt-4o-mini", quota=5, created_at=now - 7200)
    _log(bob, model_name="claude-3", type=1, group="vip")
    data = as_admin.get("/api/log/", {"p": 1, "page_size": 10})["data"]
    assert data["total"] == 3 and len(data["items"]) == 3
    first = next(i for i in data["items"] if i["model_name"] == "gpt-4o")
    assert first["channel_name"] == "main-channel" and first["channel"] == ch.pk
    def ids(**params):
        return [i["model_name"] for i in as_admin.get("/api/log/", params)["data"]["items"]]
    assert ids(username="bob") == ["claude-3"]
    assert ids(type=1) == ["claude-3"]
    assert ids(model_name="gpt-4o") == ["gpt-4o"]
    assert sorted(ids(model_name="gpt-4o%")) == ["gpt-4o", "gpt-4o-mini"]
    assert ids(start_timestamp=now - 60) == ["claude-3", "gpt-4o"]
    assert ids(end_timestamp=now - 3600) == ["gpt-4o-mini"]
    assert ids(channel=ch.pk) == ["gpt-4o"]
    assert ids(token_name="t1") == ["gpt-4o"]
    assert ids(group="vip") == ["claude-3"]
    assert ids(p=2, page_size=2) == ["gpt-4o"]  # newest first


def test_self_logs_are_own_and_sanitised(as_alice, alice, bob, fake_upstream):
    ch = make_channel(fake_upstream.base_url, key="k", name="secret-channel-name")
    mine = _log(alice, model_name="gpt-4o", channel_id=ch.pk,
                other=json.dumps({"model_ratio": 1, "admin_info": {"use_channel": [ch.pk]}}))
    _log(bob, model_name="bob-model", content="bob-secret")
    body = as_alice.get("/api/log/self", {"p": 1, "page_size": 10})
    items = body["data"]["items"]
    assert body["data"]["total"] == 1 and len(items) == 1
    row = items[0]
    assert row["id"] == mine.pk % 1024 and row["channel_name"] == ""
    assert json.loads(row["other"]) == {"model_ratio": 1}
    assert "bob" not in str(body) and "secret-channel-name" not in str(body)
    # asking for bob's logs by name is ignored: the filter is the caller
    assert as_alice.get("/api/log/self", {"username": "bob"})["data"]["total"] == 1


def test_stats(as_admin, as_alice, alice, bob):
    now = int(time.time())
    _log(alice, quota=100, prompt_tokens=10, completion_tokens=5)
    _log(alice, quota=50, created_at=now - 3600, prompt_tokens=1, completion_tokens=1)
    _log(bob, quota=7, prompt_tokens=2, completion_tokens=2)
    _log(alice, type=1, quota=999)
    assert as_admin.get("/api/log/stat")["data"] == {"quota": 157, "rpm": 2, "tpm": 19}
    assert as_admin.get("/api/log/stat", {"username": "bob"})["data"] == {"quota": 7, "rpm": 1, "tpm": 4}
    assert as_alice.get("/api/log/self/stat")["data"] == {"quota": 150, "rpm": 1, "tpm": 15}
    assert as_alice.get("/api/log/self/stat", {"start_timestamp": now - 60})["data"]["quota"] == 100


def test_search_and_delete(as_admin, as_root, as_alice, alice, bob):
    old = _log(alice, type=3, content="管理员操作", created_at=100)
    _log(bob, type=2, content="consume")
    assert [r["id"] for r in as_admin.get("/api/log/search", {"keyword": "管理"})["data"]] == [old.pk]
    assert len(as_admin.get("/api/log/search", {"keyword": "2"})["data"]) == 1
    assert len(as_alice.get("/api/log/self/search", {"keyword": "3"})["data"]) == 1
    assert as_alice.get("/api/log/self/search", {"keyword": "2"})["data"] == []
    refused = as_admin.delete("/api/log/?target_timestamp=200")  # the audit trail is root's to erase
    assert refused["success"] is False and Log.objects.count() == 2
    assert as_root.delete("/api/log/?target_timestamp=200")["data"] == 1
    assert Log.objects.count() == 1
    assert as_root.delete("/api/log/")["success"] is False


def test_token_logs_public(anon, alice, bob):
    token = make_token(alice)
    other = make_token(bob)
    a = _log(alice, token_id=token.pk, quota=3, other=json.dumps({"admin_info": {"x": 1}}))
    _log(bob, token_id=other.pk)
    body = anon.get("/api/log/token", {"key": "sk-" + token.key})
    assert body["success"] and [r["id"] for r in body["data"]] == [a.pk % 1024]
    assert "admin_info" not in str(body)
    assert anon.response["Access-Control-Allow-Origin"] == "*"
    assert anon.get("/api/log/token", {"key": "sk-unknown"})["data"] == []


def test_usage_data(as_admin, as_alice, alice, bob):
    QuotaData.objects.create(user_id=alice.pk, username="alice", model_name="m", created_at=3600, count=1, quota=10, token_used=5)
    QuotaData.objects.create(user_id=alice.pk, username="alice", model_name="m", created_at=3600, count=2, quota=20, token_used=5)
    QuotaData.objects.create(user_id=bob.pk, username="bob", model_name="m", created_at=3600, count=3, quota=30, token_used=5)
    agg = as_admin.get("/api/data/")["data"]
    assert len(agg) == 1 and (agg[0]["count"], agg[0]["quota"], agg[0]["token_used"]) == (6, 60, 15)
    assert len(as_admin.get("/api/data/", {"username": "bob"})["data"]) == 1
    mine = as_alice.get("/api/data/self")["data"]
    assert len(mine) == 2 and {r["user_id"] for r in mine} == {alice.pk}
    assert as_alice.get("/api/data/self", {"start_timestamp": 0 + 1, "end_timestamp": 40 * 86400})["success"] is False
