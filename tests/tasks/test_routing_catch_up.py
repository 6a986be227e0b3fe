"""A Midjourney / Suno channel written with no bus message (bulk writes send no signals) is found
by the submit that would otherwise fail for want of it: the moved version stamp makes it reload."""

from __future__ import annotations

import httpx
import pytest

from newapi_site import bus
from relay.models import Channel
from tests.conftest import live, make_token, make_user, propagated
from tests.relay.test_propagation import move_the_stamp_only
from tests.tasks.conftest import MJ_MODELS

pytestmark = [live, pytest.mark.relay]


def forget_earlier_tests() -> None:
    """The gateway outlives each test's tables: make it drop the channels and options of earlier tests."""
    bus.publish("channels")
    bus.publish("options")
    propagated()


def late_channel(base_url: str, type_: int, key: str, models: str) -> None:
    Channel.objects.bulk_create([Channel(name=f"late-{type_}", type=type_, key=key, models=models,
                                         group="default", base_url=base_url)])
    move_the_stamp_only("channels")


def test_mj_submit_catches_up_on_a_channel_added_a_moment_ago(gateway, task_upstream):
    token = make_token(make_user("mj-early"), unlimited_quota=True)
    forget_earlier_tests()
    with httpx.Client(base_url=gateway.url, headers={"mj-api-secret": f"sk-{token.key}"}, timeout=30) as client:
        refused = client.post("/mj/submit/imagine", json={"prompt": "a cat"})  # channels now cached
        assert refused.status_code == 503, refused.text
        late_channel(task_upstream.base_url, 2, "mj-key", MJ_MODELS)
        out = client.post("/mj/submit/imagine", json={"prompt": "a cat"})
    assert out.status_code == 200 and out.json()["code"] == 1, out.text


def test_suno_submit_catches_up_on_a_channel_added_a_moment_ago(gateway, task_upstream):
    token = make_token(make_user("suno-early"), unlimited_quota=True)
    forget_earlier_tests()
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer sk-{token.key}"}, timeout=30) as client:
        refused = client.post("/suno/submit/music", json={"prompt": "a song"})  # channels now cached
        assert refused.status_code == 503, refused.text
        late_channel(task_upstream.base_url, 36, "suno-key", "suno_music,suno_lyrics")
        out = client.post("/suno/submit/music", json={"prompt": "a song"})
    assert out.status_code == 200 and out.json()["code"] == "success", out.text
