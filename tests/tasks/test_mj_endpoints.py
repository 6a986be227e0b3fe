"""Every Midjourney-Proxy endpoint through the real gateway against the fake proxy: prices, the origin
channel of follow-ups, result codes 21/22/3, the forwarding options, image-seed, swap and notify."""

from __future__ import annotations

import httpx
import pytest

from billing.models import LOG_CONSUME, LOG_SYSTEM, Log
from newapi_site.options import update_option
from relay.models import Ability, Channel
from tasks.models import Midjourney
from tests.conftest import live, make_channel, propagated
from tests.tasks.conftest import balances

pytestmark = [live]

FULL, HALF, VIDEO = 50_000, 25_000, 400_000  # $0.1, $0.05, $0.8 × 500000


def finished_origin(client: httpx.Client, prompt: str = "a fox") -> str:
    mj_id = client.post("/mj/submit/imagine", json={"prompt": prompt}).json()["result"]
    Midjourney.objects.filter(mj_id=mj_id).update(status="SUCCESS", progress="100%")
    return mj_id


def submit(client: httpx.Client, kind: str, body: dict) -> httpx.Response:
    out = client.post(f"/mj/submit/{kind}", json=body)
    assert out.status_code in (200, 400), out.text
    return out


@pytest.mark.parametrize(
    ("kind", "body", "action", "quota"),
    [
        ("describe", {"base64": "data:image/png;base64,AA=="}, "DESCRIBE", HALF),
        ("blend", {"base64Array": ["a", "b"], "dimensions": "SQUARE"}, "BLEND", FULL),
        ("shorten", {"prompt": "a very long prompt"}, "SHORTEN", FULL),
        ("video", {"prompt": "a cat walks"}, "VIDEO", VIDEO),
        ("edits", {"prompt": "make it blue", "image": "x"}, "EDITS", FULL),
    ],
)
def test_simple_submits_are_priced_by_their_action(setup, task_upstream, kind, body, action, quota):
    mj, _, user, token, client = setup
    out = submit(client, kind, body)
    assert out.json()["code"] == 1
    assert task_upstream.requests[-1].path == f"/mj/submit/{kind}"
    assert task_upstream.requests[-1].body == body
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.action, row.quota, row.channel_id, row.progress) == (action, quota, mj.pk, "0%")
    assert balances(user, token) == (1_000_000 - quota, 500_000 - quota)
    log = Log.objects.get(user_id=user.pk, type=LOG_CONSUME)
    assert (log.model_name, log.quota) == (f"mj_{action.lower()}", quota)
    assert log.content.endswith(f"操作 {action}，ID {row.mj_id}")


def test_upload_discord_images_is_finished_at_once(setup, task_upstream):
    _, _, user, token, client = setup
    out = submit(client, "upload-discord-images", {"base64Array": ["data:image/png;base64,AA=="]})
    assert out.json()["code"] == 1 and out.json()["result"] == [f"{task_upstream.base_url}/img/up.png"]
    row = Midjourney.objects.get(user_id=user.pk)
    assert (row.action, row.status, row.progress, row.quota) == ("UPLOAD", "SUCCESS", "100%", HALF)
    assert balances(user, token) == (1_000_000 - HALF, 500_000 - HALF)


def test_change_follows_the_origin_channel(setup, task_upstream):
    mj, _, user, token, client = setup
    origin = finished_origin(client)
    # A preferred channel for mj_upscale must not take the follow-up: the image lives on the origin's account.
    make_channel(task_upstream.base_url, key="mj-key-other", type=2, name="mj2", models="mj_upscale", priority=10)
    propagated()
    assert submit(client, "change", {"taskId": origin, "action": "UPSCALE"}).json()["description"] == "index_is_required"
    assert submit(client, "change", {"taskId": origin, "index": 1}).json()["description"] == "action_is_required"
    assert submit(client, "change", {"action": "UPSCALE", "index": 1}).json()["description"] == "task_id_is_required"
    assert submit(client, "change", {"taskId": "nope", "action": "UPSCALE", "index": 1}).json()["description"] == "task_not_found"
    out = submit(client, "change", {"taskId": origin, "action": "upscale", "index": 2})
    assert out.json()["code"] == 1
    assert task_upstream.requests[-1].headers["mj-api-secret"] == "mj-key"
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.action, row.prompt, row.channel_id, row.quota) == ("UPSCALE", "a fox", mj.pk, HALF)
    assert balances(user, token) == (1_000_000 - FULL - HALF, 500_000 - FULL - HALF)


def test_change_refuses_a_disabled_origin_channel(setup, task_upstream):
    mj, _, _, _, client = setup
    origin = finished_origin(client)
    Channel.objects.filter(pk=mj.pk).update(status=2)
    from newapi_site import bus

    bus.publish("channels")
    propagated()
    out = submit(client, "change", {"taskId": origin, "action": "VARIATION", "index": 1})
    assert out.status_code == 400 and "disabled" in out.json()["description"]


def test_action_maps_custom_ids_and_inpaint_is_free(setup, task_upstream):
    _, _, user, token, client = setup
    origin = finished_origin(client)
    out = submit(client, "action", {"taskId": origin, "customId": "MJ::JOB::variation::3::abc"})
    assert Midjourney.objects.get(mj_id=out.json()["result"]).action == "VARIATION"
    out = submit(client, "action", {"taskId": origin, "customId": "MJ::JOB::upsample::2::abc"})
    assert Midjourney.objects.get(mj_id=out.json()["result"]).action == "UPSCALE"
    out = submit(client, "action", {"taskId": origin, "customId": "MJ::Inpaint::1::abc::SOLO"})
    inpaint = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (inpaint.action, inpaint.quota) == ("INPAINT", 0)
    bad = submit(client, "action", {"taskId": origin, "customId": "MJ::JOB::upsample"})
    assert bad.status_code == 400 and bad.json()["description"] == "unknown_action:MJ::JOB::upsample"
    assert submit(client, "action", {"taskId": origin}).json()["description"] == "custom_id_is_required"
    assert balances(user, token) == (1_000_000 - 2 * FULL - HALF, 500_000 - 2 * FULL - HALF)
    assert Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).count() == 3  # imagine, variation, upscale


def test_modal_is_allowed_on_an_unfinished_origin(setup, task_upstream):
    _, _, user, token, client = setup
    origin = client.post("/mj/submit/imagine", json={"prompt": "a bird"}).json()["result"]  # still 0%
    out = submit(client, "modal", {"taskId": origin, "prompt": "more birds", "maskBase64": "AA=="})
    assert out.json()["code"] == 1
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.action, row.prompt, row.quota) == ("MODAL", "a bird", FULL)
    assert submit(client, "modal", {"prompt": "x"}).json()["description"] == "task_id_is_required"


def test_code_21_existing_finished_task_is_accepted_and_charged(setup, task_upstream):
    _, _, user, token, client = setup
    out = submit(client, "imagine", {"prompt": "code21 cat"})
    assert out.json()["code"] == 1  # rewritten from 21
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.code, row.status, row.progress) == (1, "SUCCESS", "100%")
    assert row.image_url.endswith(f"/img/{row.mj_id}.png") and row.finish_time > 0
    assert balances(user, token) == (1_000_000 - FULL, 500_000 - FULL)


def test_code_22_queued_is_accepted_and_charged(setup, task_upstream):
    _, _, user, token, client = setup
    out = submit(client, "imagine", {"prompt": "code22 cat"})
    assert out.json() == {"code": 1, "description": "queued", "result": out.json()["result"], "properties": {}}
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.code, row.status, row.progress, row.quota) == (22, "", "0%", FULL)
    assert balances(user, token) == (1_000_000 - FULL, 500_000 - FULL)


def test_code_3_disables_the_channel_when_allowed(setup, task_upstream):
    mj, _, user, token, client = setup
    out = submit(client, "imagine", {"prompt": "code3 cat"})
    assert out.json()["code"] == 3
    mj.refresh_from_db()
    assert mj.status == 1  # AutomaticDisableChannelEnabled is off by default
    update_option("AutomaticDisableChannelEnabled", "true")
    propagated()
    try:
        assert submit(client, "imagine", {"prompt": "code3 cat"}).json()["code"] == 3
        mj.refresh_from_db()
        assert mj.status == 3 and "No available account instance" in mj.other_info
        assert not Ability.objects.filter(channel_id=mj.pk, enabled=True).exists()
        assert balances(user, token) == (1_000_000, 500_000)
        nxt = client.post("/mj/submit/imagine", json={"prompt": "a cat"})
        assert nxt.status_code == 503  # no channel left for mj_imagine
    finally:
        update_option("AutomaticDisableChannelEnabled", "false")
        propagated()


def test_forwarding_options_account_filter_and_mode_clear(setup, task_upstream):
    _, _, _, _, client = setup
    body = {"prompt": "a cat --fast --relax --turbo", "accountFilter": {"instanceId": "1"}}
    submit(client, "imagine", body)
    sent = task_upstream.requests[-1].body
    assert "accountFilter" not in sent and sent["prompt"] == body["prompt"]
    update_option("MjAccountFilterEnabled", "true")
    update_option("MjModeClearEnabled", "true")
    propagated()
    try:
        submit(client, "imagine", body)
        sent = task_upstream.requests[-1].body
        assert sent["accountFilter"] == {"instanceId": "1"} and sent["prompt"] == "a cat   "
    finally:
        update_option("MjAccountFilterEnabled", "false")
        update_option("MjModeClearEnabled", "false")
        propagated()


def test_insight_face_swap(setup, task_upstream):
    mj, _, user, token, client = setup
    bad = client.post("/mj/insight-face/swap", json={"sourceBase64": "AA=="})
    assert bad.status_code == 400 and bad.json()["description"] == "sour_base64_and_target_base64_is_required"
    out = client.post("/mj/insight-face/swap", json={"sourceBase64": "AA==", "targetBase64": "BB=="})
    assert out.status_code == 200 and out.json()["code"] == 1
    assert task_upstream.requests[-1].path == "/mj/insight-face/swap"
    row = Midjourney.objects.get(mj_id=out.json()["result"])
    assert (row.action, row.prompt, row.quota, row.channel_id) == ("SWAP_FACE", "InsightFace", HALF, mj.pk)
    assert balances(user, token) == (1_000_000 - HALF, 500_000 - HALF)
    assert Log.objects.get(user_id=user.pk, type=LOG_CONSUME).model_name == "swap_face"


def test_image_seed_is_proxied_to_the_origin_channel(setup, task_upstream):
    _, _, user, token, client = setup
    mj_id = client.post("/mj/submit/imagine", json={"prompt": "seed me"}).json()["result"]
    out = client.get(f"/mj/task/{mj_id}/image-seed")
    assert out.status_code == 200
    assert out.json() == {"code": 1, "description": "ok", "properties": {"x": 1}, "result": "seed-1234"}
    seen = task_upstream.requests[-1]
    assert (seen.method, seen.path, seen.headers["mj-api-secret"]) == ("GET", f"/mj/task/{mj_id}/image-seed", "mj-key")
    assert client.get("/mj/task/nope/image-seed").json()["description"] == "task_no_found"
    assert balances(user, token) == (1_000_000 - FULL, 500_000 - FULL)  # free


def test_notify_updates_like_a_poll_and_needs_the_channel_key(setup, task_upstream, gateway):
    _, _, user, token, client = setup
    mj_id = client.post("/mj/submit/imagine", json={"prompt": "notify me"}).json()["result"]
    progress = {"id": mj_id, "status": "IN_PROGRESS", "progress": "40%", "imageUrl": "http://img/p.png", "startTime": 5}
    anon = httpx.Client(base_url=gateway.url, timeout=30)
    assert anon.post("/mj/notify", json=progress).status_code == 401  # no key
    assert anon.post("/mj/notify", json=progress, headers={"mj-api-secret": f"sk-{token.key}"}).status_code == 401
    assert anon.post("/mj/notify", json={**progress, "id": "mj-404"}, headers={"mj-api-secret": "mj-key"}).status_code == 401
    assert Midjourney.objects.get(mj_id=mj_id).progress == "0%"

    out = anon.post("/mj/notify", json=progress, headers={"mj-api-secret": "mj-key"})
    assert (out.status_code, out.content) == (200, b"")
    row = Midjourney.objects.get(mj_id=mj_id)
    assert (row.status, row.progress, row.image_url, row.start_time, row.code) == ("IN_PROGRESS", "40%", "http://img/p.png", 5, 1)

    failed = {"id": mj_id, "status": "FAILURE", "progress": "100%", "failReason": "boom"}
    assert anon.post("/mj/notify?secret=mj-key", json=failed).status_code == 200
    assert anon.post("/mj/notify", json=failed, headers={"mj-api-secret": "mj-key"}).status_code == 200  # repeated
    row.refresh_from_db()
    assert (row.status, row.progress, row.fail_reason) == ("FAILURE", "100%", "boom")
    assert balances(user, token) == (1_000_000, 500_000)  # refunded once
    assert Log.objects.filter(user_id=user.pk, type=LOG_SYSTEM).count() == 1
    late = {"id": mj_id, "status": "SUCCESS", "progress": "100%"}
    anon.post("/mj/notify", json=late, headers={"mj-api-secret": "mj-key"})
    assert Midjourney.objects.get(mj_id=mj_id).status == "FAILURE"  # finished tasks stay finished


def test_short_balance_answers_in_each_relays_shape(setup, task_upstream):
    _, _, user, token, client = setup
    origin = finished_origin(client)
    balances(user, token)  # the origin's charge is written before we set the balance
    type(user).objects.filter(pk=user.pk).update(quota=10)
    from newapi_site import bus

    bus.publish(f"user:{user.pk}")
    from billing.ledger import user_key
    from newapi_site import redis as r

    if r.redis_enabled():
        r.sync_redis().delete(user_key(user.pk))  # the mirror reloads the balance we just set
    propagated()
    out = client.post("/mj/submit/imagine", json={"prompt": "x"})
    assert (out.status_code, out.json()) == (400, {"description": "quota_not_enough", "type": "upstream_error", "code": 4})
    out = client.post("/mj/insight-face/swap", json={"sourceBase64": "A", "targetBase64": "B"})
    assert out.json()["description"] == "quota_not_enough"
    out = client.post("/suno/submit/music", json={"prompt": "x"}, headers={"Authorization": f"Bearer sk-{token.key}"})
    assert (out.status_code, out.json()) == (403, {"code": "quota_not_enough", "message": "quota_not_enough", "data": None})
    # a free action (inpaint) is not balance-checked
    out = submit(client, "action", {"taskId": origin, "customId": "MJ::Inpaint::1::abc::SOLO"})
    assert out.json()["code"] == 1
    assert balances(user, token)[0] == 10
