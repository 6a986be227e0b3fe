"""A batch its writer left in processing is written by another writer, exactly once; the applied
ids it may need are kept until it is gone (PostgreSQL/MySQL + Redis)."""

from __future__ import annotations

import time

import pytest
from django.conf import settings

from billing import writer
from billing.models import LOG_CONSUME, AppliedSettlement, Log
from billing.settlement import Settlement, apply_settlements, new_id
from newapi_site import redis as r
from tests.conftest import live, make_user, settle

pytestmark = [live, pytest.mark.skipif(not settings.REDIS_CONN_STRING, reason="the Redis billing queue")]


def _settlement(user_id: int, quota: int) -> Settlement:
    row = {"user_id": user_id, "username": "rec", "model_name": "gpt-4o-mini", "quota": quota}
    return Settlement(user_id=user_id, token_id=0, channel_id=0, user_delta=-quota, token_delta=0, quota=quota,
                      counted=True, log=row, username="rec", model_name="gpt-4o-mini", id=new_id())


def _leave_in_processing(batch_id: str, items: list[Settlement], age: float) -> None:
    client = r.sync_redis()
    if items:
        client.rpush(r.key("billing", "batch", batch_id), *[s.to_json() for s in items])
    client.hset(r.key("billing", "batches"), batch_id, f"deadwriter {time.time() - age:.3f}")


def test_a_stale_batch_is_written_once_even_when_part_of_it_was_committed():
    user = make_user("rec", quota=1000)
    first, second = _settlement(user.pk, 30), _settlement(user.pk, 70)
    apply_settlements([first], once=True)  # its writer committed this much, then died before cleaning up
    _leave_in_processing("b-stale", [first, second], age=writer.STALE_SECONDS + 5)
    settle()
    user.refresh_from_db()
    assert (user.quota, user.used_quota, user.request_count) == (900, 100, 2)
    assert Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).count() == 2
    assert r.sync_redis().hlen(r.key("billing", "batches")) == 0


def test_applied_ids_are_kept_while_a_batch_that_may_hold_them_is_registered():
    old = int(time.time()) - 2 * int(writer.KEEP_APPLIED_SECONDS)
    AppliedSettlement.objects.create(id="old-one", created_at=old)
    _leave_in_processing("b-old", [], age=time.time() - old + 60)  # registered before the id was recorded
    writer._prune(time.time())
    assert AppliedSettlement.objects.filter(id="old-one").exists()
    r.sync_redis().hdel(r.key("billing", "batches"), "b-old")
    writer._prune(time.time())
    assert not AppliedSettlement.objects.filter(id="old-one").exists()
