"""The embedded ledger under `manage.py serve` (SQLite, no Redis): the parent owns the balances,
two web workers reserve and settle through it; racing requests never overspend, credits made
outside the relay reach it, and a kill -9 of the whole server loses no answered request's bill
and bills none twice after the restart (the journal is replayed from the last applied position).
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings

from tests.conftest import ROOT, free_port, wait_port
from tests.serve.test_serve import PROVISION, run_in, serve_env, wait_answering

pytestmark = [
    pytest.mark.relay,
    pytest.mark.skipif(bool(settings.REDIS_CONN_STRING), reason="the embedded ledger runs without Redis"),
]

BODY = {"model": "gpt-4o-mini", "max_tokens": 20, "messages": [{"role": "user", "content": "hello " * 30}]}
FLUSH = "import django; django.setup(); from billing.writer import wait_idle; wait_idle()"


class Server:
    """`manage.py serve` in a session of its own, so the whole group can be killed at once."""

    def __init__(self, data_dir: Path, **extra: str) -> None:
        self.port = free_port()
        self.env = {**serve_env(data_dir, self.port), **extra}
        self.data_dir = data_dir
        self.proc: subprocess.Popen | None = None

    def start(self, migrate: bool = True) -> None:
        if migrate:
            for cmd in (["migrate", "--noinput"], ["ensure_root"]):
                subprocess.run([sys.executable, "manage.py", *cmd], cwd=ROOT, env=self.env, check=True, capture_output=True)
        log = open(self.data_dir / "serve.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--no-celery"], cwd=ROOT, env=self.env,
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, timeout=30, proc=self.proc)
        wait_answering(f"http://127.0.0.1:{self.port}/api/status")

    def kill(self) -> None:
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()
        deadline = time.time() + 10
        while time.time() < deadline:  # the workers die with their parent (PDEATHSIG)
            if subprocess.run(["pgrep", "-g", str(self.proc.pid)], check=False, capture_output=True).returncode != 0:
                return
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def books(self) -> dict[str, int]:
        with sqlite3.connect(self.data_dir / "one-api.db") as db:
            quota, used, count = db.execute(
                "SELECT quota, used_quota, request_count FROM users WHERE username = 'carol'").fetchone()
            logs, logged = db.execute("SELECT count(*), coalesce(sum(quota), 0) FROM logs WHERE type = 2").fetchone()
            token_used = db.execute("SELECT coalesce(sum(used_quota), 0) FROM tokens").fetchone()[0]
            channel_used = db.execute("SELECT coalesce(sum(used_quota), 0) FROM channels").fetchone()[0]
        return {"quota": quota, "used": used, "requests": count, "logs": logs, "logged": logged,
                "token_used": token_used, "channel_used": channel_used}


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path, WEB_WORKERS="2", BATCH_UPDATE_INTERVAL="1")
    yield srv
    srv.stop()


async def _fire(url: str, key: str, total: int, concurrency: int, answered: list[int], stop_after: int = 0,
                on_stop=None) -> list[int]:
    """`total` requests, `concurrency` at a time; statuses of the ones answered in full."""
    statuses: list[int] = []
    pending = iter(range(total))
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker() -> None:
            for _ in pending:
                try:
                    resp = await client.post(url, json=BODY, headers={"Authorization": f"Bearer sk-{key}"})
                except httpx.TransportError:
                    continue  # the server went away mid-request: not answered
                statuses.append(resp.status_code)
                if resp.status_code == 200:
                    answered.append(1)
                    if stop_after and len(answered) == stop_after and on_stop is not None:
                        on_stop()

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return statuses


def _provision(srv: Server, fake_upstream) -> str:
    return run_in(srv.env, PROVISION.format(base_url=fake_upstream.base_url)).splitlines()[-1]


def test_racing_requests_across_two_workers_never_overspend(server, fake_upstream) -> None:
    server.start()
    key = _provision(server, fake_upstream)
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    assert httpx.post(url, json=BODY, headers={"Authorization": f"Bearer sk-{key}"}, timeout=10).status_code == 200
    run_in(server.env, FLUSH)
    first = server.books()
    charge = first["logged"]
    assert charge > 0
    # A credit made outside the relay (as an admin edit does) reaches the owner's balance: leave 25.5 charges.
    budget = 25 * charge + charge // 2
    run_in(server.env, "import django; django.setup(); from billing.services.credit import credit_user; "
                       f"from accounts.models import User; credit_user(User.objects.get(username='carol').pk, "
                       f"{budget - first['quota']})")

    statuses = asyncio.run(_fire(url, key, total=120, concurrency=40, answered=[]))
    run_in(server.env, FLUSH)
    books = server.books()
    ok = statuses.count(200)
    assert 0 < ok <= 25 and len(statuses) == 120
    assert set(statuses) <= {200, 403}, set(statuses)
    assert books["quota"] == budget - ok * charge >= 0  # exact, and never below zero
    assert books["logs"] == books["requests"] == ok + 1
    assert books["logged"] == books["used"] == books["token_used"] == books["channel_used"] == (ok + 1) * charge


def test_kill_9_mid_load_then_restart_bills_every_answered_request_once(server, fake_upstream) -> None:
    server.start()
    key = _provision(server, fake_upstream)
    initial = server.books()["quota"]
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    answered: list[int] = []
    asyncio.run(_fire(url, key, total=400, concurrency=20, answered=answered, stop_after=200, on_stop=server.kill))
    before = server.books()
    assert 200 <= len(answered) < 400
    assert before["logs"] < len(answered), "everything was written before the kill: nothing left to replay"

    server.start(migrate=False)  # the same SQLite file and journal
    run_in(server.env, FLUSH)
    books = server.books()
    # Answered requests are all billed; requests cut off by the kill may be billed too (their
    # charge was journaled before the answer could leave), never anything twice.
    assert len(answered) <= books["logs"] <= len(answered) + 20
    assert books["requests"] == books["logs"]
    charge = books["logged"] // books["logs"]
    assert books["logged"] == books["logs"] * charge
    assert books["logged"] == books["used"] == books["token_used"] == books["channel_used"]
    assert books["quota"] + books["used"] == initial


HOLD_ALL = """
import asyncio, os, django; django.setup()
from accounts.models import User
from billing import ledger
from billing.ledger import Account, QuotaError
user = User.objects.get(username="carol")
try:
    asyncio.run(ledger.reserve(Account(user.pk, 0, False), user.quota))
    print("held")
except QuotaError as exc:
    print(exc.kind)
os._exit(0) if {die} else None
"""


def test_holds_of_a_dead_process_go_back_to_the_balance(server, fake_upstream) -> None:
    """A process killed with requests in flight never settles them: the owner returns its holds."""
    server.start()
    _provision(server, fake_upstream)
    assert run_in(server.env, HOLD_ALL.format(die=True)).splitlines()[-1] == "held"
    deadline = time.time() + 5
    while True:  # the owner notices the process is gone within half a second
        outcome = run_in(server.env, HOLD_ALL.format(die=True)).splitlines()[-1]
        if outcome == "held" or time.time() > deadline:
            break
        time.sleep(0.2)
    assert outcome == "held"
