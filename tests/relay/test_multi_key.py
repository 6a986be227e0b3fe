"""Multi-key channels through the real gateway: one channel holding several upstream keys.

The fake upstream accepts any key and answers `status-401` keys with a 401, so a channel can hold
good and bad keys side by side. Two gateway processes share the database, Redis (or, on the
embedded default, DATA_DIR) and the invalidation bus, as two workers do.
"""

from __future__ import annotations

import json

import openai
import pytest

from billing.models import LOG_CONSUME, Log
from newapi_site.options import update_option
from relay.channels import multi_key
from relay.models import Ability, Channel
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle, start_gateway

pytestmark = [live, pytest.mark.relay]


@pytest.fixture
def second_gateway(django_db_setup):
    gw = start_gateway()
    yield gw
    gw.stop()


def multi_channel(base_url: str, keys: list[str], mode: str, **fields) -> Channel:
    fields.setdefault("name", f"multi-{mode}-{keys[0]}")
    return make_channel(
        base_url, key="\n".join(keys), channel_info=multi_key.new_info(len(keys), mode), **fields
    )


def chat(gw, token) -> None:
    client = openai.OpenAI(base_url=gw.v1, api_key=f"sk-{token.key}", max_retries=0)
    client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])


def keys_seen(fake, keys: list[str], since: int) -> list[str]:
    return [r.key for r in fake.requests[since:] if r.key in keys]


def stored_info(channel: Channel) -> dict:
    channel.refresh_from_db()
    return multi_key.parse_info(channel.channel_info)


def test_polling_hands_keys_out_in_turn_across_workers(gateway, second_gateway, fake_upstream):
    keys = ["mk-poll-a", "mk-poll-b", "mk-poll-c"]
    multi_channel(fake_upstream.base_url, keys, "polling")
    token = make_token(make_user("mkpoll"))
    since = len(fake_upstream.requests)
    for i in range(9):
        chat(gateway if i % 2 == 0 else second_gateway, token)
    seen = keys_seen(fake_upstream, keys, since)
    assert len(seen) == 9
    start = keys.index(seen[0])
    # one shared turn for both processes: an exact rotation, whichever worker served
    assert seen == [keys[(start + i) % 3] for i in range(9)]


def test_random_uses_every_key_and_one_key_per_request(gateway, second_gateway, fake_upstream):
    keys = ["mk-rand-a", "mk-rand-b", "mk-rand-c"]
    multi_channel(fake_upstream.base_url, keys, "random")
    token = make_token(make_user("mkrand"))
    since = len(fake_upstream.requests)
    for i in range(30):
        chat(gateway if i % 2 == 0 else second_gateway, token)
    seen = keys_seen(fake_upstream, keys, since)
    assert len(seen) == 30  # each request sent one key, never the whole list
    assert set(seen) == set(keys)


def test_rejected_key_is_disabled_alone_and_the_request_served(
    gateway, second_gateway, fake_upstream, auto_disable
):
    keys = ["mk-bad-a", "status-401", "mk-bad-c"]
    channel = multi_channel(fake_upstream.base_url, keys, "polling")
    user = make_user("mkbad")
    token = make_token(user)
    bad_before = len(fake_upstream.requests_for("status-401"))
    for _ in range(3):  # the rotation reaches the bad key within three requests
        chat(gateway, token)
    assert len(fake_upstream.requests_for("status-401")) == bad_before + 1
    info = stored_info(channel)
    assert channel.status == 1
    assert info["multi_key_status_list"] == {1: multi_key.KEY_AUTO_DISABLED}
    assert info["multi_key_disabled_reason"] == {1: "fake upstream says 401"}
    assert Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()
    # every worker stops using it
    since = len(fake_upstream.requests)
    for i in range(6):
        chat(gateway if i % 2 else second_gateway, token)
    assert len(fake_upstream.requests_for("status-401")) == bad_before + 1
    assert set(keys_seen(fake_upstream, keys, since)) == {"mk-bad-a", "mk-bad-c"}
    # nine requests served, each billed once; the retried one names the channel twice
    settle()
    logs = list(Log.objects.filter(user_id=user.pk, type=LOG_CONSUME))
    assert len(logs) == 9
    assert len({log.quota for log in logs}) == 1 and logs[0].quota > 0
    user.refresh_from_db()
    assert user.used_quota == 9 * logs[0].quota
    tried = [json.loads(log.other)["admin_info"]["use_channel"] for log in logs]
    assert sorted(tried, key=len) == [[channel.pk]] * 8 + [[channel.pk, channel.pk]]


def test_channel_goes_with_its_last_key_and_comes_back_by_the_manage_action(
    gateway, fake_upstream, auto_disable, as_admin
):
    channel = multi_channel(fake_upstream.base_url, ["status-401", "status-401"], "random", name="all-bad")
    token = make_token(make_user("mkall"))
    with pytest.raises(openai.AuthenticationError):
        chat(gateway, token)  # both keys tried (a retry on the same channel), both rejected
    info = stored_info(channel)
    assert info["multi_key_status_list"] == {0: 3, 1: 3}
    assert channel.status == 3
    assert json.loads(channel.other_info)["status_reason"] == multi_key.ALL_KEYS_DISABLED
    assert not Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()
    with pytest.raises(openai.APIStatusError) as exc:
        chat(gateway, token)
    assert exc.value.status_code == 503

    listing = as_admin.post(
        "/api/channel/multi_key/manage", {"channel_id": channel.pk, "action": "get_key_status"}
    )
    assert listing["success"], listing
    data = listing["data"]
    assert (data["total"], data["enabled_count"], data["auto_disabled_count"]) == (2, 0, 2)
    assert data["keys"][0]["reason"] == "fake upstream says 401"
    assert "status-401" not in json.dumps(data)  # a preview, never the key

    done = as_admin.post(
        "/api/channel/multi_key/manage", {"channel_id": channel.pk, "action": "enable_key", "key_index": 1}
    )
    assert done["success"], done
    info = stored_info(channel)
    assert info["multi_key_status_list"] == {0: 3}
    assert channel.status == 1  # a key is back: so is the channel
    assert "status_reason" not in json.loads(channel.other_info)
    assert Ability.objects.filter(channel_id=channel.pk, enabled=True).exists()

    refused = as_admin.post(
        "/api/channel/multi_key/manage", {"channel_id": channel.pk, "action": "enable_key", "key_index": 7}
    )
    assert refused == {"success": False, "message": "密钥索引超出范围"}
    manual = as_admin.post(
        "/api/channel/multi_key/manage", {"channel_id": channel.pk, "action": "disable_all_keys"}
    )
    assert manual["success"], manual
    channel.refresh_from_db()
    assert channel.status == 3
    assert as_admin.post(
        "/api/channel/multi_key/manage", {"channel_id": channel.pk, "action": "enable_all_keys"}
    )["success"]
    assert stored_info(channel)["multi_key_status_list"] == {} and channel.status == 1


def test_channel_test_tries_every_key_and_disables_the_bad_one(
    gateway, fake_upstream, auto_disable, as_admin
):
    keys = ["mk-test-a", "status-401", "mk-test-c"]
    channel = multi_channel(fake_upstream.base_url, keys, "random")
    since = len(fake_upstream.requests)
    result = as_admin.get(f"/api/channel/test/{channel.pk}")
    assert result["success"] is False
    assert result["message"] == "key #1: status code 401: fake upstream says 401"
    assert sorted(r.key for r in fake_upstream.requests[since:] if r.key in keys) == sorted(keys)
    info = stored_info(channel)
    assert info["multi_key_status_list"] == {1: 3}
    assert channel.status == 1 and channel.test_time > 0


def test_add_modes_and_what_the_api_shows(as_admin, fake_upstream):
    base = {
        "name": "mk-api",
        "type": 1,
        "models": "gpt-4o-mini",
        "group": "default",
        "base_url": fake_upstream.base_url,
    }
    made = as_admin.post(
        "/api/channel/",
        {
            "mode": "multi_to_single",
            "multi_key_mode": "polling",
            "channel": {**base, "key": "k1\nk2\n\nk3\n"},
        },
    )
    assert made["success"], made
    multi = Channel.objects.get(name="mk-api")
    assert multi.key == "k1\nk2\nk3"
    shown = as_admin.get(f"/api/channel/{multi.pk}")["data"]
    assert shown["key"] == ""
    assert shown["channel_info"] == {
        "is_multi_key": True,
        "multi_key_size": 3,
        "multi_key_status_list": None,
        "multi_key_polling_index": 0,
        "multi_key_mode": "polling",
    }
    assert "k1" not in json.dumps(as_admin.get("/api/channel/", {"p": 0, "page_size": 50}))

    assert as_admin.post(
        "/api/channel/", {"mode": "batch", "channel": {**base, "name": "mk-b", "key": "b1\nb2"}}
    )["success"]
    assert sorted(Channel.objects.filter(name="mk-b").values_list("key", flat=True)) == ["b1", "b2"]
    assert as_admin.post(
        "/api/channel/", {"mode": "single", "channel": {**base, "name": "mk-s", "key": "s1"}}
    )["success"]
    single = Channel.objects.get(name="mk-s")
    assert (
        single.key == "s1"
        and as_admin.get(f"/api/channel/{single.pk}")["data"]["channel_info"]["is_multi_key"] is False
    )
    assert as_admin.post("/api/channel/", {**base, "name": "mk-flat", "key": "f1\nf2"})["success"]
    assert Channel.objects.filter(name="mk-flat").count() == 2  # the flat body: one channel per line

    bad_mode = as_admin.post(
        "/api/channel/",
        {"mode": "multi_to_single", "multi_key_mode": "sometimes", "channel": {**base, "key": "x"}},
    )
    assert bad_mode == {"success": False, "message": "不支持的多密钥轮询模式"}
    assert as_admin.post("/api/channel/", {"mode": "twice", "channel": {**base, "key": "x"}}) == {
        "success": False,
        "message": "不支持的添加模式",
    }
    # JSON-array keys (service-account documents) become one key each
    sa = [{"type": "service_account", "project_id": "p1"}, {"type": "service_account", "project_id": "p2"}]
    assert as_admin.post(
        "/api/channel/",
        {"mode": "multi_to_single", "channel": {**base, "name": "mk-json", "key": json.dumps(sa)}},
    )["success"]
    js = Channel.objects.get(name="mk-json")
    assert [json.loads(k) for k in multi_key.split_keys(js.key)] == sa
    assert multi_key.parse_info(js.channel_info)["multi_key_mode"] == "random"


def test_edit_appends_or_replaces_keys(as_admin, fake_upstream):
    channel = multi_channel(fake_upstream.base_url, ["e1", "e2"], "random", name="mk-edit")
    Channel.objects.filter(pk=channel.pk).update(
        channel_info=multi_key.new_info(2, "random") | {"multi_key_status_list": {1: 3}}
    )
    done = as_admin.put(
        "/api/channel/",
        {"id": channel.pk, "key": "e2\ne3", "key_mode": "append", "multi_key_mode": "polling"},
    )
    assert done["success"], done
    info = stored_info(channel)
    assert channel.key == "e1\ne2\ne3"
    assert (info["multi_key_size"], info["multi_key_mode"], info["multi_key_status_list"]) == (
        3,
        "polling",
        {1: 3},
    )
    assert as_admin.put("/api/channel/", {"id": channel.pk, "key": "r1\nr2"})["success"]
    info = stored_info(channel)
    assert channel.key == "r1\nr2" and info["multi_key_size"] == 2 and info["multi_key_status_list"] == {}


def test_new_api_layout_is_read_as_written(fake_upstream):
    """The column as New API writes it (bytes, string keys, optional maps) reads back alike."""
    raw = (
        b'{"is_multi_key":true,"multi_key_size":3,"multi_key_status_list":{"2":2},'
        b'"multi_key_disabled_reason":{"2":"manual operation"},"multi_key_disabled_time":{"2":1700000000},'
        b'"multi_key_polling_index":1,"multi_key_mode":"polling"}'
    )
    info = multi_key.parse_info(raw)
    assert info["multi_key_status_list"] == {2: 2} and multi_key.live_indices(info, 3) == (0, 1)
    assert json.loads(json.dumps(multi_key.dump_info(info))) == json.loads(raw)
    channel = multi_channel(fake_upstream.base_url, ["n1", "n2", "n3"], "polling", name="mk-layout")
    Channel.objects.filter(pk=channel.pk).update(channel_info=info)
    assert stored_info(channel) == info


def test_multi_key_channel_has_no_single_balance(as_admin, fake_upstream):
    channel = multi_channel(fake_upstream.base_url, ["bal-a", "bal-b"], "random", name="mk-balance")
    answer = as_admin.get(f"/api/channel/update_balance/{channel.pk}")
    assert answer["success"] is False
    assert answer["message"].startswith("多密钥渠道不支持余额查询")
    assert not [r for r in fake_upstream.requests if r.key.startswith("bal-")]
