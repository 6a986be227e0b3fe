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


def serve(tmp_path: Path, **extra: str):
    port = free_port()
    env = {**serve_env(tmp_path, port), **extra}
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


@pytest.fixture
def served(tmp_path: Path):
    yield from serve(tmp_path)


@pytest.fixture
def served_with_redis(tmp_path: Path):
    import redis

    url = "redis://127.0.0.1:6379/0"
    for served in serve(tmp_path, REDIS_CONN_STRING=url, BATCH_UPDATE_INTERVAL="0.2"):
        yield served
    client = redis.Redis.from_url(url)
    for key in client.scan_iter(match=served[2]["REDIS_KEY_PREFIX"] + "*"):
        client.delete(key)


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
    web = [pid for pid, cmd in zip(kids, cmdlines) if "relay.edge.web_worker" in cmd]
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
    web = [p for p in kids if b"relay.edge.web_worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
    os.kill(web[0], signal.SIGKILL)
    deadline = time.time() + 10
    while time.time() < deadline:
        now = [p for p in children(proc.pid) if b"relay.edge.web_worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
        if len(now) == 2 and web[0] not in now:
            break
        time.sleep(0.2)
    assert len(now) == 2 and web[0] not in now
    assert proc.poll() is None


PROVISION = """
import django; django.setup()
from accounts.models import Token, User
from relay.models import Channel
Channel.objects.create(name="fake", type=1, key="ok-key", base_url="{base_url}", models="gpt-4o-mini", group="default")
user = User(username="carol", display_name="carol", quota=1_000_000, group="default")
user.set_password("carol-password-1"); user.save()
print(Token.objects.create(user_id=user.pk, name="carol", unlimited_quota=True).key)
"""


def run_in(env: dict[str, str], code: str) -> str:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE": "newapi_site.settings"},
                          check=True, capture_output=True, text=True).stdout.strip()


def listening_sockets(port: int) -> int:
    lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for line in lines if line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A")


def test_with_redis_the_parent_writes_billing_and_each_worker_has_a_socket(served_with_redis, fake_upstream) -> None:
    """Web workers queue settlements in Redis and never write them; the serve parent does. Each
    worker accepts on its own SO_REUSEPORT socket, so the kernel spreads connections."""
    proc, port, env = served_with_redis
    base = f"http://127.0.0.1:{port}"
    wait_answering(f"{base}/api/status")
    key = run_in(env, PROVISION.format(base_url=fake_upstream.base_url)).splitlines()[-1]
    assert listening_sockets(port) == 2
    web = [p for p in children(proc.pid) if b"relay.edge.web_worker" in Path(f"/proc/{p}/cmdline").read_bytes()]
    assert all(b"BILLING_DRAIN_IN_WORKER=false" in Path(f"/proc/{p}/environ").read_bytes().split(b"\0") for p in web)

    count_logs = "import django; django.setup(); from billing.models import Log; print(Log.objects.count())"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    os.kill(proc.pid, signal.SIGSTOP)  # the parent cannot drain: nothing reaches the database
    try:
        for _ in range(4):
            resp = httpx.post(f"{base}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer sk-{key}"}, timeout=10)
            assert resp.status_code == 200
        time.sleep(1.0)  # five batch intervals
        assert run_in(env, count_logs) == "0"
    finally:
        os.kill(proc.pid, signal.SIGCONT)
    deadline = time.time() + 10
    while run_in(env, count_logs) != "4" and time.time() < deadline:
        time.sleep(0.2)
    assert run_in(env, count_logs) == "4"
