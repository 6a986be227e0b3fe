"""Suno submits retry on another channel like text requests (tasks-special.md §2.5), but never after a 400."""

from __future__ import annotations

import pytest

from billing.models import LOG_CONSUME, Log
from newapi_site.options import update_option
from tasks.models import Task
from tests.conftest import live, make_channel, propagated
from tests.tasks.conftest import balances

pytestmark = [live]
SUNO_MUSIC = 50_000


@pytest.fixture
def flaky(setup, task_upstream):
    """A preferred Suno channel whose submits fail with the status the test sets."""
    make_channel(task_upstream.base_url, key="suno-key-b", type=36, name="suno-b", models="suno_music", priority=10)
    update_option("RetryTimes", "1")
    propagated()
    yield setup
    task_upstream.suno_fail.clear()
    update_option("RetryTimes", "0")


def submit(client, token):
    return client.post("/suno/submit/music", json={"prompt": "a song"}, headers={"Authorization": f"Bearer sk-{token.key}"})


def seen_keys(task_upstream) -> list[str]:
    return [r.headers["Authorization"] for r in task_upstream.requests if r.path == "/suno/submit/MUSIC"]


@pytest.mark.parametrize("status", [503, 429, 401])
def test_retryable_failure_moves_to_another_channel(flaky, task_upstream, status):
    _, suno, user, token, client = flaky
    task_upstream.suno_fail["suno-key-b"] = status
    before = len(seen_keys(task_upstream))
    out = submit(client, token)
    assert out.status_code == 200, out.text
    assert seen_keys(task_upstream)[before:] == ["Bearer suno-key-b", "Bearer suno-key"]
    assert Task.objects.get(task_id=out.json()["data"]).channel_id == suno.pk
    assert balances(user, token) == (1_000_000 - SUNO_MUSIC, 500_000 - SUNO_MUSIC)
    assert Log.objects.get(user_id=user.pk, type=LOG_CONSUME).channel_id == suno.pk


@pytest.mark.parametrize("status", [400, 408, 504])
def test_non_retryable_failure_is_returned_and_not_charged(flaky, task_upstream, status):
    _, _, user, token, client = flaky
    task_upstream.suno_fail["suno-key-b"] = status
    before = len(seen_keys(task_upstream))
    out = submit(client, token)
    assert out.status_code == status
    assert out.json()["code"] == "fail_to_fetch_task"
    assert seen_keys(task_upstream)[before:] == ["Bearer suno-key-b"]
    assert balances(user, token) == (1_000_000, 500_000)
    assert not Task.objects.filter(user_id=user.pk).exists()


def test_retry_times_zero_does_not_retry(flaky, task_upstream):
    _, _, user, token, client = flaky
    update_option("RetryTimes", "0")
    propagated()
    task_upstream.suno_fail["suno-key-b"] = 503
    before = len(seen_keys(task_upstream))
    assert submit(client, token).status_code == 503
    assert seen_keys(task_upstream)[before:] == ["Bearer suno-key-b"]
    assert balances(user, token) == (1_000_000, 500_000)


def test_every_channel_failing_returns_the_last_error(flaky, task_upstream):
    _, _, user, token, client = flaky
    task_upstream.suno_fail.update({"suno-key-b": 503, "suno-key": 502})
    out = submit(client, token)
    assert out.status_code == 502
    assert balances(user, token) == (1_000_000, 500_000)
