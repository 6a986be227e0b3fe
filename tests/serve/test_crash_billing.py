"""A kill -9 of the whole `manage.py serve` process group under load loses no charge and bills
nothing twice (PostgreSQL or MariaDB + Redis).

Each request uses a token of its own, so the logs say exactly which requests were billed. The
kill lands while the billing writer is inside a database transaction (the test holds the user's
row lock, as a slow database would), with requests in flight and holds taken. After
a restart on the same database and Redis: every answered request has exactly one log row, a
request whose answer was lost in the kill has at most one, a refused one none; the user, token
and channel counters equal the sum of the logs; the holds of the killed workers are refunded.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import redis
from django.conf import settings
from django.db import transaction

from accounts.models import Token, User
from billing.models import LOG_CONSUME, Log
from tests.conftest import ROOT, free_port, gateway_env, live, make_channel, make_user

pytestmark = [live, pytest.mark.skipif(not settings.REDIS_CONN_STRING, reason="the Redis billing queue")]

REQUESTS = 1000
CONCURRENCY = 24
PACE = 0.02  # seconds each client waits between its requests: the load outlasts the kill on any machine
USER_QUOTA = 3_500  # under 100x the hold estimate: every request takes a recorded hold
TOKEN_QUOTA = 1_000


class Load:
    """REQUESTS chat calls, CONCURRENCY at a time, token i for request i; outcome per token."""

    def __init__(self, port: int, keys: list[str]) -> None:
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        self.keys = keys
        self.outcome: dict[int, str] = {}  # answered | lost (sent, no answer) | refused | http-<status>
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def answered(self) -> int:
        return sum(1 for v in self.outcome.values() if v == "answered")

    async def _run(self) -> None:
        todo = iter(range(len(self.keys)))
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with httpx.AsyncClient(timeout=20, limits=httpx.Limits(max_connections=CONCURRENCY)) as client:

            async def worker() -> None:
                for i in todo:
                    try:
                        resp = await client.post(self.url, json=body, headers={"Authorization": f"Bearer sk-{self.keys[i]}"})
                        self.outcome[i] = "answered" if resp.status_code == 200 else f"http-{resp.status_code}"
                    except httpx.ConnectError:
                        self.outcome[i] = "refused"
                    except httpx.HTTPError:
                        self.outcome[i] = "lost"
                    await asyncio.sleep(PACE)

            await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


def start_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--port", str(port), "--no-celery"], cwd=ROOT,
                                env={**env, "PORT": str(port)}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)  # its own process group, killed as a whole
    deadline = time.time() + 40
    while True:
        assert proc.poll() is None, log.read_text()[-2000:]
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/status", timeout=2).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        assert time.time() < deadline, "serve did not answer"
        time.sleep(0.1)


def test_kill_9_mid_load_bills_every_answered_request_exactly_once(fake_upstream, tmp_path) -> None:
    channel = make_channel(fake_upstream.base_url, key="crash-key")
    user = make_user("crash", quota=USER_QUOTA)
    Token.objects.bulk_create([Token(user_id=user.pk, name=f"c{i}", unlimited_quota=False, remain_quota=TOKEN_QUOTA)
                               for i in range(REQUESTS)])
    tokens = list(Token.objects.filter(user_id=user.pk).order_by("id"))
    prefix = f"crash-test-{os.getpid()}-{free_port()}"
    env = gateway_env({"DATA_DIR": str(tmp_path), "WEB_WORKERS": "2", "REDIS_KEY_PREFIX": prefix,
                       "BATCH_UPDATE_INTERVAL": "0.2", "BILLING_HOLD_SECONDS": "2", "SESSION_SECRET": "crash-test"})
    client = redis.Redis.from_url(settings.REDIS_CONN_STRING)
    serve_log = tmp_path / "serve.log"
    proc = start_serve(env, free_port(), serve_log)
    try:
        load = Load(int(proc.args[4]), [t.key for t in tokens])
        with transaction.atomic():
            User.objects.select_for_update().get(pk=user.pk)  # the writer's first batch waits on this row
            started = time.time()
            load.thread.start()
            while load.answered() < 100 or time.time() - started < 0.6:
                assert time.time() - started < 30 and load.thread.is_alive(), load.outcome
                time.sleep(0.01)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        load.thread.join(60)
        assert not load.thread.is_alive()
        assert "refused" in load.outcome.values(), "the kill came after the load"

        proc = start_serve(env, free_port(), serve_log)
        deadline = time.time() + 30
        keys = [f"{prefix}:billing:queue", f"{prefix}:billing:batches", f"{prefix}:billing:holds"]
        while any(client.exists(k) for k in keys):
            assert time.time() < deadline, {k: client.type(k) for k in keys if client.exists(k)}
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.terminate()
            proc.wait(15)

    billed: dict[int, list[int]] = {}
    for token_id, quota in Log.objects.filter(user_id=user.pk, type=LOG_CONSUME).values_list("token_id", "quota"):
        billed.setdefault(token_id, []).append(quota)
    outcome = {tokens[i].pk: v for i, v in load.outcome.items()}
    answered = [tid for tid, v in outcome.items() if v == "answered"]
    assert answered and all(len(billed.get(tid, [])) == 1 for tid in answered), "an answered request is unbilled"
    assert all(len(q) == 1 for q in billed.values()), "a request billed twice"
    assert all(outcome[tid] in ("answered", "lost") for tid in billed), "a request that never ran is billed"

    spent = sum(q[0] for q in billed.values())
    user.refresh_from_db()
    channel.refresh_from_db()
    assert (user.used_quota, user.request_count, user.quota) == (spent, len(billed), USER_QUOTA - spent)
    assert channel.used_quota == spent
    for token in Token.objects.filter(user_id=user.pk):
        charge = billed.get(token.pk, [0])[0]
        assert (token.used_quota, token.remain_quota) == (charge, TOKEN_QUOTA - charge)
    # The killed workers' holds were refunded: Redis agrees with the database again.
    assert int(client.get(f"{prefix}:bal:u:{user.pk}")) == user.quota
    for key in client.scan_iter(match=f"{prefix}:*"):
        client.delete(key)
