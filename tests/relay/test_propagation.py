"""Changes made through /api are in force at once on every web worker of `manage.py serve`.

Two web workers share the port (SO_REUSEPORT); the requests go over 12 connections opened up
front, which the kernel spreads over both. A change is made through one worker and used at
once: the other must already know it (bus message, or its failure-path catch-up).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx
import pytest
from django.conf import settings

from accounts.models import Option, Token, generate_key
from billing.models import Log
from newapi_site import bus
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ROOT
from relay.models import Channel
from tests.conftest import ROOT, free_port, gateway_env, live, make_channel, make_token, make_user, wait_port

pytestmark = [live, pytest.mark.relay]

FRESH_MODELS = [f"fresh-model-{i}" for i in range(4)]


@contextmanager
def two_workers():
    """`manage.py serve` with two web workers on this test's database, Redis and DATA_DIR."""
    port = free_port()
    env = gateway_env({"PORT": str(port), "WEB_WORKERS": "2"})
    log = open(settings.DATA_DIR / f"serve-{port}.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "serve", "--no-celery"], cwd=ROOT, env=env,
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=30, proc=proc)
        base = f"http://127.0.0.1:{port}"
        deadline = time.time() + 30
        while True:  # the socket is bound before the workers run
            try:
                if sum(httpx.get(f"{base}/api/status", timeout=5).status_code == 200 for _ in range(6)) == 6:
                    break
            except httpx.TransportError:
                pass
            if time.time() > deadline:
                raise RuntimeError("serve did not answer")
            time.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def root_headers() -> dict[str, str]:
    root = make_user("root", role=ROLE_ROOT, quota=100_000_000)
    root.access_token = uuid.uuid4().hex
    root.save(update_fields=["access_token"])
    return {"Authorization": root.access_token, "New-Api-User": str(root.pk)}


def root_token(base: str, headers: dict[str, str], name: str) -> Token:
    """A token root creates for itself through /api."""
    body = httpx.post(f"{base}/api/token/", headers=headers, timeout=10,
                      json={"name": name, "unlimited_quota": True, "expired_time": -1}).json()
    assert body["success"], body
    return Token.objects.get(name=name)


class Connections:
    """n keep-alive connections opened up front (the kernel spreads them over the workers), so
    a request sent right after a change reaches its worker within a millisecond or so."""

    def __init__(self, base: str, n: int = 12) -> None:
        self.clients = [httpx.Client(base_url=base, timeout=30) for _ in range(n)]
        self.pool = ThreadPoolExecutor(n)
        self.each(lambda c: c.get("/api/status"))  # connect now

    def each(self, fn) -> list:
        return list(self.pool.map(fn, self.clients))

    def chats(self, key: str, model: str = "gpt-4o-mini") -> list[httpx.Response]:
        return self.each(lambda c: chat(c, key, model))

    def close(self) -> None:
        self.pool.shutdown()
        for c in self.clients:
            c.close()


def chat(client: httpx.Client, key: str, model: str = "gpt-4o-mini") -> httpx.Response:
    return client.post("/v1/chat/completions", headers={"Authorization": f"Bearer sk-{key}"},
                       json={"model": model, "messages": [{"role": "user", "content": "hi"}]})


def test_channel_and_token_created_through_api_work_at_once_on_every_worker(fake_upstream):
    update_option("ModelRatio", json.dumps({m: 1 for m in ["gpt-4o-mini", *FRESH_MODELS]}))
    headers = root_headers()
    make_channel(fake_upstream.base_url)
    warm = make_token(make_user("warm"))
    with two_workers() as base:
        conns = Connections(base)
        # Both workers have routed (and cached their channel index) before the changes.
        assert {r.status_code for r in conns.chats(warm.key)} == {200}
        for i, model in enumerate(FRESH_MODELS):
            body = httpx.post(f"{base}/api/channel/", headers=headers, timeout=10, json={
                "name": f"fresh-{i}", "type": 1, "key": "fresh-key", "models": model,
                "group": "default", "base_url": fake_upstream.base_url}).json()
            assert body["success"], body
            key = root_token(base, headers, f"fresh-{i}").key
            answers = conns.chats(key, model)
            assert [r.status_code for r in answers] == [200] * 12, [r.text for r in answers if r.status_code != 200]
        conns.close()


def test_model_ratio_changed_through_api_bills_every_chat_at_once(fake_upstream):
    update_option("ModelRatio", json.dumps({"ratio-model": 1}))
    headers = root_headers()
    make_channel(fake_upstream.base_url, models="ratio-model")
    user = make_user("payer")
    token = make_token(user)
    with two_workers() as base:
        conns = Connections(base)  # both workers load the options serving /api, before any relay request
        body = httpx.put(f"{base}/api/option/", headers=headers, timeout=10,
                         json={"key": "ModelRatio", "value": json.dumps({"ratio-model": 3})}).json()
        assert body["success"], body
        assert [r.status_code for r in conns.chats(token.key, "ratio-model")] == [200] * 12
        conns.close()
        billed = [log.quota for log in _wait_logs(user.pk, 12)]
    # The fake upstream's usage, completion ratio 1, group ratio 1, model ratio 3.
    assert billed == [3 * (fake_upstream.usage_prompt + fake_upstream.usage_completion)] * 12


def test_disabled_token_and_banned_user_are_refused_at_once_on_every_worker(fake_upstream):
    headers = root_headers()
    make_channel(fake_upstream.base_url)
    other = make_token(make_user("soon-banned"))
    with two_workers() as base:
        token = root_token(base, headers, "soon-gone")
        conns = Connections(base)
        assert {r.status_code for r in conns.chats(token.key)} == {200}
        assert {r.status_code for r in conns.chats(other.key)} == {200}
        for _ in range(3):
            for status, answer in ((2, 401), (1, 200)):
                body = httpx.put(f"{base}/api/token/?status_only=true", headers=headers, timeout=10,
                                 json={"id": token.pk, "status": status}).json()
                assert body["success"], body
                assert [r.status_code for r in conns.chats(token.key)] == [answer] * 12
        body = httpx.post(f"{base}/api/user/manage", headers=headers, timeout=10,
                          json={"id": other.user_id, "action": "disable"}).json()
        assert body["success"], body
        assert [r.status_code for r in conns.chats(other.key)] == [403] * 12
        conns.close()


def _wait_logs(user_id: int, count: int, timeout: float = 20.0) -> list[Log]:
    deadline = time.time() + timeout
    while True:
        logs = list(Log.objects.filter(user_id=user_id, type=2).order_by("id"))
        if len(logs) >= count or time.time() > deadline:
            assert len(logs) == count, [log.quota for log in logs]
            return logs
        time.sleep(0.05)


def move_the_stamp_only(*events: str) -> None:
    """Announce changes as a message still on its way would look: with Redis the version stamp
    moves and the message never comes; on the file bus the lines are the stamp."""
    from newapi_site import redis as r

    if r.redis_enabled():
        r.sync_redis().incr(r.key("invalidate", "version"))
    else:
        with open(settings.DATA_DIR / "invalidate.log", "a") as fh:
            fh.write("".join(f"0 {event}\n" for event in events))


def test_a_request_about_to_fail_catches_up_first(gateway, fake_upstream):
    """Token, channel and price written without any bus message (bulk writes send no signals):
    the requests that would fail for want of them find the moved stamp and reload."""
    update_option("ModelRatio", json.dumps({"gpt-4o-mini": 1}))
    make_channel(fake_upstream.base_url)
    user = make_user("early-bird")
    token = make_token(user)
    key = generate_key()
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        assert chat(client, key).status_code == 401  # now remembered as unknown
        assert chat(client, token.key, "late-model").status_code == 500  # no price: options cached
        Token.objects.bulk_create([Token(user_id=user.pk, key=key, name="late", unlimited_quota=True)])
        Option.objects.filter(key="ModelRatio").update(value=json.dumps({"gpt-4o-mini": 1, "late-model": 1}))
        move_the_stamp_only(bus.token_topic(key), "options")
        assert chat(client, key).status_code == 200
        assert chat(client, token.key, "late-model").status_code == 503  # priced, but no channel yet
        Channel.objects.bulk_create([Channel(name="late", type=1, key="late-key", models="late-model",
                                             group="default", base_url=fake_upstream.base_url)])
        move_the_stamp_only("channels")
        assert chat(client, token.key, "late-model").status_code == 200
