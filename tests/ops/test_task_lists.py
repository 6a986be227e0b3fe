"""/api/mj/, /api/mj/self, /api/task/, /api/task/self: own rows only for /self, 10 per page, filters."""

from __future__ import annotations

import pytest

from newapi_site.options import update_option
from tasks.models import Midjourney, Task

pytestmark = pytest.mark.django_db


def mj(user, n: int, **fields) -> list[Midjourney]:
    return [Midjourney.objects.create(user_id=user.pk, mj_id=f"{user.username}-{i}", action="IMAGINE",
                                      submit_time=1000 + i, channel_id=fields.get("channel_id", 1),
                                      image_url=fields.get("image_url", "")) for i in range(n)]


def task(user, n: int, **fields) -> list[Task]:
    return [Task.objects.create(user_id=user.pk, task_id=f"{user.username}-t{i}", platform=fields.get("platform", "suno"),
                                action="MUSIC", status=fields.get("status", "SUCCESS"), submit_time=2000 + i,
                                channel_id=fields.get("channel_id", 1), data={"i": i}) for i in range(n)]


def test_mj_self_pages_of_ten_own_rows_only(as_alice, alice, bob):
    mine = mj(alice, 12)
    mj(bob, 3)
    first = as_alice.get("/api/mj/self")["data"]
    assert [r["id"] for r in first] == [r.pk for r in reversed(mine)][:10]
    second = as_alice.get("/api/mj/self", {"p": 1})["data"]
    assert [r["mj_id"] for r in second] == ["alice-1", "alice-0"]
    assert as_alice.get("/api/mj/self", {"p": -3})["data"] == first
    assert [r["mj_id"] for r in as_alice.get("/api/mj/self", {"mj_id": "alice-4"})["data"]] == ["alice-4"]
    ranged = as_alice.get("/api/mj/self", {"start_timestamp": 1003, "end_timestamp": 1005})["data"]
    assert [r["submit_time"] for r in ranged] == [1005, 1004, 1003]
    assert as_alice.get("/api/mj/self", {"mj_id": "bob-0"})["data"] == []
    assert set(first[0]) >= {"mj_id", "prompt", "image_url", "status", "progress", "fail_reason", "buttons"}


def test_mj_admin_lists_everyone_with_filters(as_admin, as_alice, alice, bob):
    mj(alice, 2, channel_id=5)
    mj(bob, 2, channel_id=6, image_url="https://cdn.example/x.png")
    assert as_alice.get("/api/mj/")["message"] == "权限不足"
    assert len(as_admin.get("/api/mj/")["data"]) == 4
    update_option("ServerAddress", "https://gw.example")
    by_channel = as_admin.get("/api/mj/", {"channel_id": 6})["data"]
    assert {r["mj_id"] for r in by_channel} == {"bob-0", "bob-1"}
    assert by_channel[0]["image_url"] == "https://gw.example/mj/image/bob-1"  # MjForwardUrlEnabled defaults on


def test_task_self_and_admin(as_alice, as_admin, alice, bob):
    task(alice, 11, platform="suno")
    task(bob, 2, platform="suno", status="FAILURE", channel_id=9)
    mine = as_alice.get("/api/task/self")["data"]
    assert len(mine) == 10 and all(r["user_id"] == alice.pk for r in mine)
    assert mine[0]["task_id"] == "alice-t10" and mine[0]["data"] == {"i": 10}
    assert len(as_alice.get("/api/task/self", {"p": 1})["data"]) == 1
    assert as_alice.get("/api/task/self", {"status": "FAILURE"})["data"] == []
    assert as_alice.get("/api/task/")["message"] == "权限不足"
    failed = as_admin.get("/api/task/", {"status": "FAILURE", "platform": "suno"})["data"]
    assert {r["task_id"] for r in failed} == {"bob-t0", "bob-t1"}
    assert len(as_admin.get("/api/task/", {"channel_id": 9})["data"]) == 2
    assert len(as_admin.get("/api/task/", {"user_id": alice.pk, "p": 1})["data"]) == 1
    assert [r["task_id"] for r in as_admin.get("/api/task/", {"task_id": "alice-t3"})["data"]] == ["alice-t3"]
    ranged = as_admin.get("/api/task/", {"start_timestamp": 2009, "end_timestamp": 2010})["data"]
    assert [r["task_id"] for r in ranged] == ["alice-t10", "alice-t9"]


def test_lists_need_login(client):
    for path in ("/api/mj/self", "/api/task/self", "/api/mj/", "/api/task/"):
        response = client.get(path)
        assert response.status_code == 401


def test_management_mj_paths_are_not_relay_paths():
    from relay.edge.asgi import _is_relay_path

    assert not _is_relay_path("/api/mj/self") and not _is_relay_path("/api/mj/")
    assert _is_relay_path("/mj/submit/imagine") and _is_relay_path("/fast/mj/submit/imagine")
