"""The poll schedule under a real `celery -A newapi_site worker -B`: with TASK_POLL_INTERVAL=1, beat
alone moves submitted tasks to their upstream state (the test never triggers a poll)."""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path

from django.conf import settings

from tasks.models import Midjourney, Task
from tests.conftest import ROOT, gateway_env, live
from tests.tasks.conftest import balances

pytestmark = [live]


def wait_for(check, timeout: float = 40.0) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.2)
    return False


def test_beat_runs_the_pollers_on_the_configured_interval(setup, task_upstream):
    _, _, user, token, client = setup
    queue = f"test-beat-{uuid.uuid4().hex[:8]}"  # its own queue: other runs may share the broker
    data = Path(settings.DATA_DIR)
    log = open(data / f"{queue}.log", "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "newapi_site", "worker", "-B", "-s", str(data / f"{queue}-schedule"),
         "--pool=solo", "-l", "info"],
        cwd=ROOT, env=gateway_env({"TASK_POLL_INTERVAL": "1", "CELERY_QUEUE": queue}), stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        mj_id = client.post("/mj/submit/imagine", json={"prompt": "a beat"}).json()["result"]
        auth = {"Authorization": f"Bearer sk-{token.key}"}
        song = client.post("/suno/submit/music", json={"prompt": "a song"}, headers=auth).json()["data"]
        task_upstream.advance(mj_id, status="SUCCESS", progress="100%", imageUrl="http://img/x.png")
        task_upstream.advance(song, status="FAILURE", fail_reason="no voice")
        assert wait_for(lambda: Midjourney.objects.get(mj_id=mj_id).progress == "100%"), (data / f"{queue}.log").read_text()[-3000:]
        assert wait_for(lambda: Task.objects.get(task_id=song).progress == "100%")
        assert Midjourney.objects.get(mj_id=mj_id).status == "SUCCESS"
        assert Task.objects.get(task_id=song).status == "FAILURE"
        assert balances(user, token) == (1_000_000 - 50_000, 500_000 - 50_000)  # the song was refunded
        polls = (data / f"{queue}.log").read_text().count("tasks.poll_midjourney")
        assert polls >= 2  # sent by beat again and again
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
