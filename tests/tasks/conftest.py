"""Fixtures shared by the Midjourney / Suno tests: the fake upstream, a real Celery worker, personas."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from accounts.models import Token, User
from newapi_site.options import update_option
from tests.conftest import ROOT, gateway_env, make_channel, make_token, make_user, propagated, settle
from tests.fakes.task_upstream import FakeTaskUpstream

MJ_MODELS = (
    "mj_imagine,mj_upscale,mj_variation,mj_reroll,mj_describe,mj_blend,mj_modal,mj_shorten,mj_upload,mj_video,"
    "mj_edits,mj_inpaint,mj_custom_zoom,mj_zoom,mj_pan,swap_face"
)


@pytest.fixture(scope="session")
def task_upstream() -> FakeTaskUpstream:
    return FakeTaskUpstream().start()


@pytest.fixture(scope="session")
def worker(django_db_setup, django_db_blocker):
    """A real Celery worker consuming a queue of its own (other test sessions may share the broker)."""
    queue = f"test-tasks-{uuid.uuid4().hex[:8]}"
    log = open(Path(settings.DATA_DIR) / f"celery-{queue}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "newapi_site", "worker", "-Q", queue, "--pool=solo", "-l", "info"],
        cwd=ROOT, env=gateway_env(), stdout=log, stderr=subprocess.STDOUT,
    )
    yield queue
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture
def setup(gateway, task_upstream):
    update_option("ServerAddress", gateway.url)
    propagated()
    mj = make_channel(task_upstream.base_url, key="mj-key", type=2, name="mj", models=MJ_MODELS)
    suno = make_channel(task_upstream.base_url, key="suno-key", type=36, name="suno", models="suno_music,suno_lyrics")
    user = make_user("alice", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000, name="alice-key")
    propagated()
    client = httpx.Client(base_url=gateway.url, headers={"mj-api-secret": f"sk-{token.key}"}, timeout=30)
    return mj, suno, user, token, client


def balances(user: User, token: Token) -> tuple[int, int]:
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    return user.quota, token.remain_quota
