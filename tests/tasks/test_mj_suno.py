"""Midjourney and Suno end to end: a real Daphne gateway, a real Celery worker (Redis broker, or the
embedded filesystem broker in the SQLite run), and a fake Midjourney-Proxy / Suno upstream on 127.0.0.1."""

from __future__ import annotations

import httpx

from billing.models import LOG_CONSUME, LOG_SYSTEM, Log
from relay.channels import multi_key
from relay.models import Channel
from tasks.models import Midjourney, Task
from tests.conftest import live, propagated
from tests.fakes.task_upstream import PNG
from tests.tasks.conftest import balances

pytestmark = [live]

MJ_IMAGINE = 50_000  # $0.1 × 500000
SUNO_MUSIC = 50_000


def run_poll(name: str, queue: str) -> dict | None:
    from tasks import tasks as celery_tasks

    return getattr(celery_tasks, name).apply_async(queue=queue).get(timeout=60)


def test_imagine_submit_progress_success_through_worker(setup, task_upstream, worker):
    mj, _, user, token, client = setup
    out = client.post("/mj/submit/imagine", json={"prompt": "a cat --fast", "notifyHook": "http://x"})
    assert out.status_code == 200, out.text
    body = out.json()
    assert body["code"] == 1
    mj_id = body["result"]
    sent = task_upstream.requests[-1]
    assert sent.headers["mj-api-secret"] == "mj-key" and "notifyHook" not in sent.body  # MjNotifyEnabled off
    assert balances(user, token) == (1_000_000 - MJ_IMAGINE, 500_000 - MJ_IMAGINE)
    log = Log.objects.get(user_id=user.pk, type=LOG_CONSUME)
    assert (log.model_name, log.quota, log.channel_id, log.token_id) == ("mj_imagine", MJ_IMAGINE, mj.pk, token.pk)

    dto = client.get(f"/mj/task/{mj_id}/fetch").json()
    assert (dto["id"], dto["action"], dto["progress"], dto["status"]) == (mj_id, "IMAGINE", "0%", "")

    task_upstream.advance(mj_id, status="IN_PROGRESS", progress="50%", startTime=1)
    assert run_poll("poll_midjourney", worker)["updated"] == 1
    row = Midjourney.objects.get(mj_id=mj_id)
    assert (row.status, row.progress, row.code) == ("IN_PROGRESS", "50%", 1)

    task_upstream.advance(mj_id, status="SUCCESS", progress="100%", finishTime=2, imageUrl=f"{task_upstream.base_url}/img/{mj_id}.png")
    run_poll("poll_midjourney", worker)
    row.refresh_from_db()
    assert (row.status, row.progress) == ("SUCCESS", "100%")
    listed = client.post("/mj/task/list-by-condition", json={"ids": [mj_id, "nope"]}).json()
    assert [t["id"] for t in listed] == [mj_id]
    assert listed[0]["imageUrl"] == f"{client.base_url}/mj/image/{mj_id}"
    image = httpx.get(f"{client.base_url}/mj/image/{mj_id}")  # public: no key
    assert image.status_code == 200 and image.content == PNG and image.headers["content-type"] == "image/png"
    assert balances(user, token) == (1_000_000 - MJ_IMAGINE, 500_000 - MJ_IMAGINE)  # success keeps the charge


def test_failed_task_refunds_user_and_token_exactly_once(setup, task_upstream, worker):
    _, _, user, token, client = setup
    mj_id = client.post("/fast/mj/submit/imagine", json={"prompt": "a dog"}).json()["result"]
    assert task_upstream.requests[-1].path == "/fast/mj/submit/imagine"
    assert balances(user, token) == (1_000_000 - MJ_IMAGINE, 500_000 - MJ_IMAGINE)
    task_upstream.advance(mj_id, status="FAILURE", progress="100%", failReason="upstream said no")
    first = run_poll("poll_midjourney", worker)
    again = run_poll("poll_midjourney", worker)
    from tasks.polling import poll_midjourney

    poll_midjourney()  # a third poller in this process finds nothing left to do
    assert first["refunded"] == 1 and again["refunded"] == 0
    assert balances(user, token) == (1_000_000, 500_000)
    row = Midjourney.objects.get(mj_id=mj_id)
    assert (row.status, row.progress, row.fail_reason) == ("FAILURE", "100%", "upstream said no")
    refunds = Log.objects.filter(user_id=user.pk, type=LOG_SYSTEM)
    assert [(r.quota, r.content.startswith(f"构图失败 {mj_id}")) for r in refunds] == [(MJ_IMAGINE, True)]
    user.refresh_from_db()
    assert user.used_quota == 0


def test_refused_submit_is_not_charged(setup, task_upstream):
    _, _, user, token, client = setup
    out = client.post("/mj/submit/imagine", json={"prompt": "banned words"})
    assert out.status_code == 200 and out.json()["code"] == 24
    assert balances(user, token) == (1_000_000, 500_000)
    row = Midjourney.objects.get(user_id=user.pk)
    assert (row.status, row.progress, row.quota) == ("FAILURE", "100%", 0)
    assert client.post("/mj/submit/imagine", json={}).json() == {"description": "prompt_is_required", "type": "upstream_error", "code": 4}
    assert client.get("/mj/task/nope/fetch").status_code == 400


def test_follow_up_needs_a_finished_origin(setup, task_upstream):
    _, _, user, token, client = setup
    mj_id = client.post("/mj/submit/imagine", json={"prompt": "a fox"}).json()["result"]
    out = client.post("/mj/submit/simple-change", json={"content": f"{mj_id} u2"})
    assert out.status_code == 400 and out.json()["description"] == "task_status_not_success"
    Midjourney.objects.filter(mj_id=mj_id).update(status="SUCCESS", progress="100%")
    out = client.post("/mj/submit/simple-change", json={"content": f"{mj_id} u2"})
    assert out.json()["code"] == 1
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.action, row.prompt, row.quota) == ("UPSCALE", "a fox", 25_000)
    assert balances(user, token) == (1_000_000 - MJ_IMAGINE - 25_000, 500_000 - MJ_IMAGINE - 25_000)


def test_suno_submit_fetch_and_poll(setup, task_upstream, worker):
    _, suno, user, token, client = setup
    auth = {"Authorization": f"Bearer sk-{token.key}"}
    out = client.post("/suno/submit/music", json={"prompt": "a song", "unknown": 1}, headers=auth)
    assert out.status_code == 200, out.text
    task_id = out.json()["data"]
    assert task_upstream.requests[-1].body == {"prompt": "a song", "mv": "chirp-v3-0", "make_instrumental": False}
    assert balances(user, token) == (1_000_000 - SUNO_MUSIC, 500_000 - SUNO_MUSIC)
    assert Log.objects.get(user_id=user.pk, type=LOG_CONSUME).model_name == "suno_music"
    one = client.get(f"/suno/fetch/{task_id}", headers=auth).json()
    assert (one["code"], one["data"]["action"], one["data"]["status"]) == ("success", "MUSIC", "NOT_START")

    task_upstream.advance(task_id, status="SUCCESS", finish_time=99, data=[{"audio_url": "http://a"}])
    run_poll("poll_suno", worker)
    many = client.post("/suno/fetch", json={"ids": [task_id]}, headers=auth).json()
    assert many["data"][0]["status"] == "SUCCESS" and many["data"][0]["progress"] == "100%"
    assert many["data"][0]["data"] == [{"audio_url": "http://a"}]

    lyrics = client.post("/suno/submit/lyrics", json={"prompt": "words"}, headers=auth).json()["data"]
    task_upstream.advance(lyrics, status="FAILURE", fail_reason="nope")
    assert run_poll("poll_suno", worker)["refunded"] == 1
    assert run_poll("poll_suno", worker)["refunded"] == 0
    assert balances(user, token) == (1_000_000 - SUNO_MUSIC, 500_000 - SUNO_MUSIC)
    assert Task.objects.get(task_id=lyrics).status == "FAILURE"
    bad = client.post("/suno/submit/lyrics", json={}, headers=auth)
    assert bad.status_code == 400 and bad.json() == {"code": "invalid_request", "message": "prompt_empty", "data": None}


def test_update_task_false_turns_polling_off(setup, task_upstream, settings):
    from tasks import tasks as celery_tasks

    _, _, user, token, client = setup
    mj_id = client.post("/mj/submit/imagine", json={"prompt": "x"}).json()["result"]
    task_upstream.advance(mj_id, status="FAILURE", progress="100%", failReason="x")
    settings.UPDATE_TASK = False
    assert celery_tasks.poll_midjourney() is None
    assert Midjourney.objects.get(mj_id=mj_id).progress == "0%"


def test_multi_key_task_channel_polls_with_one_key(setup, task_upstream, worker):
    mj, _, user, token, client = setup
    Channel.objects.filter(pk=mj.pk).update(key="mj-key\nmj-key-2", channel_info=multi_key.new_info(2, "polling"))
    propagated()
    mj_id = client.post("/mj/submit/imagine", json={"prompt": "a dog"}).json()["result"]
    task_upstream.advance(mj_id, status="IN_PROGRESS", progress="10%", startTime=1)
    assert run_poll("poll_midjourney", worker)["updated"] == 1
    poll = [r for r in task_upstream.requests if r.path == "/mj/task/list-by-condition"][-1]
    assert poll.headers["mj-api-secret"] == "mj-key"  # one key, never the column's key list
