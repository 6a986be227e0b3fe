"""`manage.py serve` as `make run` starts it: embedded SQLite, no Redis, filesystem Celery broker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port, wait_port


def serve_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SQL_DSN", "REDIS_CONN_STRING", "SQLITE_PATH")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), WEB_WORKERS="2", SESSION_SECRET="serve-test")
    env["REDIS_KEY_PREFIX"] = f"serve-test-{port}"
    return env


def children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


@pytest.fixture
def served(tmp_path: Path):
    port = free_port()
    env = serve_env(tmp_path, port)
    for cmd in (["migrate", "--noinput"], ["ensure_root"]):
        subprocess.run([sys.executable, "manage.py", *cmd], cwd=ROOT, env=env, check=True, capture_output=True)
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=30, proc=proc)
        yield proc, port, env
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_answering(url: str, timeout: float = 30) -> httpx.Response:
    """The socket is bound before the workers run, so wait until a worker answers."""
    deadline = time.time() + timeout
    while True:
        try:
            return httpx.get(url, timeout=5)
        except httpx.TransportError:
            if time.time() > deadline:
                raise
            time.sleep(0.1)


def test_serve_runs_workers_answers_and_stops(served) -> None:
    proc, port, env = served
    base = f"http://127.0.0.1:{port}"
    assert wait_answering(f"{base}/api/status").status_code == 200
    login = httpx.get(f"{base}/admin/login/", timeout=5)
    assert login.status_code == 200
    css = httpx.get(f"{base}/static/admin/css/base.css", timeout=5)
    assert css.status_code == 200 and "css" in css.headers["content-type"]

    kids = children(proc.pid)
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in kids]
    web = [pid for pid, cmd in zip(kids, cmdlines) if "relay.web_worker" in cmd]
    celery = [pid for pid, cmd in zip(kids, cmdlines) if "celery" in cmd]
    assert len(web) == 2 and len(celery) == 1

    resp = httpx.post(f"{base}/v1/chat/completions", json={"model": "gpt-4o-mini", "messages": []}, timeout=5)
    assert resp.status_code == 401
    assert resp.json()["error"]["message"]

    all_pids = [proc.pid, *kids, *[g for k in celery for g in children(k)]]
    proc.send_signal(signal.SIGTERM)
    proc.wait(10)
    deadline = time.time() + 10
    while any(alive(pid) for pid in all_pids) and time.time() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in all_pids if alive(pid)]
    assert proc.returncode == 0


def test_celery_worker_consumes_the_filesystem_broker(served) -> None:
    proc, port, env = served
    wait_answering(f"http://127.0.0.1:{port}/api/status")
    script = "from newapi_site.celery import app; app.send_task('celery.accumulate', args=(1, 2))"
    subprocess.run([sys.executable, "-c", "import django; django.setup(); " + script], cwd=ROOT,
                   env={**env, "DJANGO_SETTINGS_MODULE": "newapi_site.settings"}, check=True, capture_output=True)
    queue = Path(env["DATA_DIR"]) / "celery-broker" / "out"
    deadline = time.time() + 20
    while list(queue.iterdir()) and time.time() < deadline:
        time.sleep(0.2)
    assert not list(queue.iterdir()), "the Celery worker did not consume the queued message"


def test_workers_do_not_outlive_a_killed_parent(served) -> None:
    proc, port, env = served
    wait_answering(f"http://127.0.0.1:{port}/api/status")
    kids = children(proc.pid)
    proc.kill()
    proc.wait()
    deadline = time.time() + 15
    while any(alive(pid) for pid in kids) and time.time() < deadline:
        time.sleep(0.2)
    assert not [pid for pid in kids if alive(pid)]


def test_a_dead_web_worker_is_replaced(served) -> None:
    proc, port, env = served
    wait_answering(f"http://127.0.0.1:{port}/api/status")
    kids = children(proc.pid)
    web = [p for p in kids if b"relay.web_worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
    os.kill(web[0], signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        now = [p for p in children(proc.pid) if b"relay.web_worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(now) == 2 and web[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and web[0] not in now
    assert proc.poll() is None
