"""Channel lookups outside the chat pipeline catch up too: a channel written with no bus message
(bulk writes send no signals) is found by the request that would otherwise fail for want of it."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from newapi_site import bus
from relay.models import Channel
from tests.conftest import live, propagated
from tests.relay.test_propagation import move_the_stamp_only
from tests.relay.test_realtime import (
    MODEL,
    auth_kwargs,
    persona,
    realtime_upstream,
    refused,
    session,
    session_log,
    ws_url,
)

pytestmark = [live, pytest.mark.relay]
__all__ = ["realtime_upstream"]  # the fixture, imported for this module's tests


def forget_earlier_tests() -> None:
    """The gateway outlives each test's tables: make it drop the channels and options of earlier tests."""
    bus.publish("channels")
    bus.publish("options")
    propagated()


def late_channel(base_url: str, key: str, models: str) -> None:
    Channel.objects.bulk_create([Channel(name="late", type=1, key=key, models=models, group="default",
                                         base_url=base_url)])
    move_the_stamp_only("channels")


def test_realtime_connect_catches_up_on_a_channel_added_a_moment_ago(gateway, realtime_upstream):
    user, token = persona("rt-early")
    forget_earlier_tests()
    event, code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key)))  # channels now cached
    assert (event["error"]["status"], code) == (503, 4503), event
    late_channel(realtime_upstream.base_url, "rt-key", MODEL)
    events = asyncio.run(session(ws_url(gateway), token.key, 1))
    assert [e["type"] for e in events] == ["session.created", "response.created", "response.done"]
    assert session_log(user).quota > 0  # billed (and written before the next test's table flush)


def test_model_lookup_catches_up_on_a_channel_added_a_moment_ago(gateway):
    _, token = persona("models-early")
    forget_earlier_tests()
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer sk-{token.key}"}, timeout=30) as client:
        assert client.get("/v1/models/late-model").status_code == 404  # channels now cached
        late_channel("http://127.0.0.1:9", "late-key", "late-model")
        out = client.get("/v1/models/late-model")
    assert out.status_code == 200 and out.json()["id"] == "late-model", out.text
