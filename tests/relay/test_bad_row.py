"""A settlement the database rejects must not stop billing for anyone else (PostgreSQL/MySQL + Redis:
the queued writer and the real column widths)."""

from __future__ import annotations

import json

import httpx
import orjson
import pytest
from django.conf import settings
from django.test import Client

from accounts.models import Option
from billing.models import LOG_CONSUME, Log, QuotaData
from billing.settlement import Settlement, new_id
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ROOT
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle

pytestmark = [live, pytest.mark.skipif(not settings.REDIS_CONN_STRING, reason="the Redis billing queue")]

LONG_MODEL = "vendor/" + "m" * 193  # 200 characters: over logs.model_name (191) and quota_data (64)


@pytest.fixture
def long_model_priced():
    update_option("ModelRatio", json.dumps({LONG_MODEL: 1, "gpt-4o-mini": 0.075}))
    propagated()
    yield
    Option.objects.filter(key="ModelRatio").delete()


def _queue_state() -> tuple[int, int]:
    from billing.ledger import queue_key
    from newapi_site import redis as r

    client = r.sync_redis()
    return client.llen(queue_key()), client.hlen(r.key("billing", "batches"))


def test_a_200_character_model_name_is_billed_truncated_with_everyone_else(gateway, fake_upstream, long_model_priced):
    channel = make_channel(fake_upstream.base_url, key="long-names", models=f"gpt-4o-mini,{LONG_MODEL}")
    user = make_user("lng", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000)
    headers = {"Authorization": f"Bearer sk-{token.key}"}
    models = ["gpt-4o-mini"] * 3 + [LONG_MODEL] + ["gpt-4o-mini"] * 3
    for model in models:
        resp = httpx.post(f"{gateway.v1}/chat/completions", headers=headers, timeout=10,
                          json={"model": model, "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200, resp.text
    settle()

    logs = list(Log.objects.filter(user_id=user.pk, type=LOG_CONSUME))
    assert len(logs) == 7
    assert sorted(log.model_name for log in logs) == sorted(["gpt-4o-mini"] * 6 + [LONG_MODEL[:191]])
    rollups = {q.model_name: q.count for q in QuotaData.objects.filter(user_id=user.pk)}
    assert rollups == {"gpt-4o-mini": 6, LONG_MODEL[:64]: 1}
    spent = sum(log.quota for log in logs)
    user.refresh_from_db()
    token.refresh_from_db()
    channel.refresh_from_db()
    assert spent > 0
    assert (user.used_quota, user.quota, user.request_count) == (spent, 1_000_000 - spent, 7)
    assert (token.used_quota, token.remain_quota, channel.used_quota) == (spent, 500_000 - spent, spent)
    assert _queue_state() == (0, 0)


def _settlement(user_id: int, quota: int, **log: object) -> Settlement:
    row = {"user_id": user_id, "username": "dl", "model_name": "gpt-4o-mini", "quota": quota, **log}
    return Settlement(user_id=user_id, token_id=0, channel_id=0, user_delta=-quota, token_delta=0, quota=quota,
                      counted=True, log=row, username="dl", model_name="gpt-4o-mini", tokens_used=1, id=new_id())


def test_a_row_the_database_rejects_is_dead_lettered_and_the_rest_of_its_batch_billed(gateway):
    from billing import writer
    from billing.ledger import queue_key
    from newapi_site import redis as r

    user = make_user("dl", quota=1000)
    good = [_settlement(user.pk, 10) for _ in range(4)]
    # Out of BIGINT's range: no fitting at the edge can save this row.
    bad = _settlement(user.pk, 500, prompt_tokens=2**63)
    client = r.sync_redis()
    dead_before = writer.dead_letter_count()
    # One push, so one writer pops them as one batch.
    items = [s.to_json() for s in good[:2]] + [bad.to_json(), b"not a settlement"] + [s.to_json() for s in good[2:]]
    client.rpush(queue_key(), *items)
    settle()

    assert _queue_state() == (0, 0)
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (960, 40, 4)
    assert Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).count() == 4
    assert writer.dead_letter_count() == dead_before + 2
    letters = [orjson.loads(x) for x in client.lrange(writer.dead_letter_key(), -2, -1)]
    assert letters[0]["settlement"] == "not a settlement"
    assert orjson.loads(letters[1]["settlement"])["id"] == bad.id and letters[1]["error"]
    # Root sees the count on the console's index page.
    root_console = Client()
    root_console.force_login(make_user("dlroot", role=ROLE_ROOT))
    page = root_console.get("/admin/", follow=True)
    assert f"{dead_before + 2} billing settlements were refused by the database" in page.content.decode()

    # Written again (a batch recovered after a crash): nothing is billed twice.
    client.rpush(queue_key(), *[s.to_json() for s in good])
    settle()
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (960, 40, 4)
    assert Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).count() == 4
