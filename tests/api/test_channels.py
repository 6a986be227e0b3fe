"""/api/channel/*: admin-only, keys never returned."""

from __future__ import annotations

from relay.models import Ability, Channel
from tests.conftest import make_channel


def test_create_one_channel_per_key_line(as_admin):
    body = as_admin.post("/api/channel/", {"name": "multi", "type": 1, "key": "k-one\nk-two\n\n k-three ",
                                           "models": "gpt-4o,gpt-4o-mini", "group": "default,vip",
                                           "base_url": "http://127.0.0.1:1"})
    assert body["success"], body
    channels = list(Channel.objects.order_by("id"))
    assert [c.key for c in channels] == ["k-one", "k-two", "k-three"]
    assert Ability.objects.filter(channel_id=channels[0].pk).count() == 4


def test_create_validation(as_admin):
    assert as_admin.post("/api/channel/", {"name": "x", "key": "", "models": "a"})["success"] is False
    assert as_admin.post("/api/channel/", {"name": "x", "key": "k", "models": "m" * 256})["success"] is False
    assert as_admin.post("/api/channel/", {"name": "v", "type": 41, "key": "{}", "models": "a"})["success"] is False
    assert as_admin.post("/api/channel/", {"name": "v", "type": 41, "key": "{\n}", "models": "a",
                                           "other": "{\"us\": \"x\"}"})["success"] is False
    body = as_admin.post("/api/channel/", {"name": "v", "type": 41, "key": "{\n\"a\": 1\n}", "models": "a",
                                           "other": "{\"default\": \"us-east5\"}"})
    assert body["success"] and Channel.objects.get(name="v").key == "{\n\"a\": 1\n}"
    assert as_admin.post("/api/channel/", {"name": "x", "key": "k", "models": "a",
                                           "model_mapping": "{not json"})["success"] is False


def test_list_get_search_never_return_keys(as_admin, fake_upstream):
    channels = [make_channel(fake_upstream.base_url, key=f"secret-{i}", name=f"ch{i}", priority=i) for i in range(3)]
    listed = as_admin.get("/api/channel/", {"p": 0, "page_size": 2})["data"]
    assert isinstance(listed, list) and [c["id"] for c in listed] == [channels[2].pk, channels[1].pk]
    assert [c["id"] for c in as_admin.get("/api/channel/", {"p": 1, "page_size": 2})["data"]] == [channels[0].pk]
    by_id = as_admin.get("/api/channel/", {"id_sort": "true"})["data"]
    assert [c["id"] for c in by_id] == [c.pk for c in reversed(channels)]
    detail = as_admin.get(f"/api/channel/{channels[0].pk}")["data"]
    found = as_admin.get("/api/channel/search", {"keyword": "ch1"})["data"]
    assert [c["id"] for c in found] == [channels[1].pk]
    for payload in (listed, detail, found):
        assert "secret-" not in str(payload)
    assert detail["key"] == "" and detail["name"] == "ch0"
    # a key never matches: an exact-match search would confirm a guessed key
    assert as_admin.get("/api/channel/search", {"keyword": "secret-2"})["data"] == []


def test_search_by_group_and_model(as_admin, fake_upstream):
    a = make_channel(fake_upstream.base_url, key="a", models="gpt-4o", group="default,vip")
    make_channel(fake_upstream.base_url, key="b", models="claude-3", group="default")
    assert [c["id"] for c in as_admin.get("/api/channel/search", {"group": "vip"})["data"]] == [a.pk]
    assert [c["id"] for c in as_admin.get("/api/channel/search", {"model": "gpt"})["data"]] == [a.pk]


def test_partial_update_keeps_key(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="keep-me", priority=5, tag="t")
    body = as_admin.put("/api/channel/", {"id": channel.pk, "name": "renamed", "key": "", "priority": 0,
                                          "models": "gpt-4o"})
    assert body["success"] and body["data"]["key"] == ""
    channel.refresh_from_db()
    assert (channel.name, channel.key, channel.priority, channel.tag) == ("renamed", "keep-me", 0, "t")
    assert list(Ability.objects.filter(channel_id=channel.pk).values_list("model", flat=True)) == ["gpt-4o"]
    as_admin.put("/api/channel/", {"id": channel.pk, "key": "new-key"})
    channel.refresh_from_db()
    assert channel.key == "new-key"


def test_deletes(as_admin, fake_upstream):
    a, b, c, d = (make_channel(fake_upstream.base_url, key=k) for k in "abcd")
    assert as_admin.delete(f"/api/channel/{a.pk}")["success"]
    assert as_admin.post("/api/channel/batch", {"ids": [b.pk]})["data"] == 1
    Channel.objects.filter(pk=c.pk).update(status=3)
    assert as_admin.delete("/api/channel/disabled")["data"] == 1
    assert list(Channel.objects.values_list("id", flat=True)) == [d.pk]
    assert set(Ability.objects.values_list("channel_id", flat=True)) == {d.pk}


def test_tags(as_admin, fake_upstream):
    a = make_channel(fake_upstream.base_url, key="a")
    b = make_channel(fake_upstream.base_url, key="b")
    assert as_admin.post("/api/channel/batch/tag", {"ids": [a.pk, b.pk], "tag": "team"})["data"] == 2
    assert as_admin.post("/api/channel/tag/disabled", {"tag": "team"})["success"]
    assert set(Channel.objects.values_list("status", flat=True)) == {2}
    assert not Ability.objects.filter(enabled=True).exists()
    assert as_admin.post("/api/channel/tag/enabled", {"tag": "team"})["success"]
    assert not Ability.objects.filter(enabled=False).exists()
    assert as_admin.put("/api/channel/tag", {"tag": "team", "new_tag": "crew", "priority": 7, "models": "m1"})["success"]
    assert set(Channel.objects.values_list("tag", "priority", "models")) == {("crew", 7, "m1")}
    tagged = as_admin.get("/api/channel/", {"tag_mode": "true"})["data"]
    assert {c["id"] for c in tagged} == {a.pk, b.pk}


def test_fix_and_models(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="a", models="gpt-4o,x-model")
    Ability.objects.all().delete()
    assert as_admin.post("/api/channel/fix")["data"] == 2
    assert as_admin.get("/api/channel/models_enabled")["data"] == ["gpt-4o", "x-model"]
    ids = {m["id"] for m in as_admin.get("/api/channel/models")["data"]}
    assert {"gpt-4o", "x-model"} <= ids
    assert channel.pk


def test_fetch_models(as_admin, fake_upstream):
    channel = make_channel(fake_upstream.base_url, key="fetch-key\nsecond")
    fake_upstream.reset()
    assert as_admin.get(f"/api/channel/fetch_models/{channel.pk}")["data"] == ["gpt-4o-mini"]
    assert fake_upstream.requests[-1].key == "fetch-key" and fake_upstream.requests[-1].path == "/v1/models"
    body = as_admin.post("/api/channel/fetch_models", {"base_url": fake_upstream.base_url, "type": 1, "key": "x"})
    assert body["data"] == ["gpt-4o-mini"]
    body = as_admin.post("/api/channel/fetch_models", {"base_url": fake_upstream.base_url, "key": "status-401"})
    assert body["success"] is False
