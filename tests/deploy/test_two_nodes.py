"""Two `manage.py serve` nodes on different ports sharing PostgreSQL and Redis, as two nodes behind a
load balancer: channel state, token quota and options agree between them, and the Midjourney
poller runs once per interval, not once per node."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from accounts.models import Token
from billing.models import Log
from newapi_site.roles import ROLE_ROOT
from relay.models import Channel
from tests.conftest import live, make_channel, make_token, make_user
from tests.deploy.nodes import Node, start_node
from tests.tasks.conftest import setup, task_upstream  # noqa: F401  (fixtures)

pytestmark = [live]

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def two_nodes(tmp_path: Path):
    nodes = [start_node(tmp_path / name) for name in ("a", "b")]
    yield nodes
    for node in nodes:
        assert node.stop() == 0


def chat(node: Node, key: str, body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{node.url}/v1/chat/completions", json=body or BODY,
                      headers={"Authorization": f"Bearer sk-{key}"}, timeout=20)


def root_headers() -> dict[str, str]:
    root = make_user(f"root-{uuid.uuid4().hex[:6]}", role=ROLE_ROOT)
    root.access_token = uuid.uuid4().hex
    root.save(update_fields=["access_token"])
    return {"Authorization": root.access_token, "New-Api-User": str(root.pk)}


def test_a_channel_disabled_on_one_node_is_not_chosen_on_the_other(two_nodes, fake_upstream) -> None:
    a, b = two_nodes
    first = make_channel(fake_upstream.base_url, key="node-first")
    make_channel(fake_upstream.base_url, key="node-second")
    token = make_token(make_user("two-nodes-channel"))
    for _ in range(6):  # both channels in use on node b, so its caches hold them
        assert chat(b, token.key).status_code == 200
    assert {r.key for r in fake_upstream.requests[-6:]} == {"node-first", "node-second"}

    put = httpx.put(f"{a.url}/api/channel/", json={"id": first.pk, "status": 2}, headers=root_headers(), timeout=10)
    assert put.json()["success"] is True
    assert Channel.objects.get(pk=first.pk).status == 2
    fake_upstream.reset()
    for _ in range(12):  # from the very next request on the other node
        assert chat(b, token.key).status_code == 200
    assert {r.key for r in fake_upstream.requests} == {"node-second"}


def test_a_channel_auto_disabled_on_one_node_is_not_chosen_on_the_other(two_nodes, fake_upstream) -> None:
    a, b = two_nodes
    headers = root_headers()
    for key in ("AutomaticDisableChannelEnabled",):
        assert httpx.put(f"{a.url}/api/option/", json={"key": key, "value": "true"}, headers=headers,
                         timeout=10).json()["success"]
    make_channel(fake_upstream.base_url, key="node-alive")
    token = make_token(make_user("two-nodes-auto"))
    assert chat(b, token.key).status_code == 200
    # A channel tried first (higher priority) whose key the upstream refuses; b learns of it on the bus.
    dead = make_channel(fake_upstream.base_url, key="status-401", priority=10)
    fake_upstream.reset()
    chat(a, token.key)  # a meets the 401 and disables the channel
    assert [r.key for r in fake_upstream.requests][:1] == ["status-401"]
    deadline = time.time() + 5
    while Channel.objects.get(pk=dead.pk).status != 3 and time.time() < deadline:
        time.sleep(0.05)
    assert Channel.objects.get(pk=dead.pk).status == 3
    fake_upstream.reset()
    for _ in range(8):
        assert chat(b, token.key).status_code == 200
    assert {r.key for r in fake_upstream.requests} == {"node-alive"}


def test_a_token_is_never_overspent_by_both_nodes_at_once(two_nodes, fake_upstream) -> None:
    a, b = two_nodes
    make_channel(fake_upstream.base_url, key="node-quota", models="gpt-4")
    # max_tokens: the hold is then close to the charge (the fake answers 7 completion tokens)
    body = {**BODY, "model": "gpt-4", "max_tokens": 7}
    user = make_user("two-nodes-quota", quota=100_000_000)
    probe = make_token(user, name="probe")
    assert chat(a, probe.key, body).status_code == 200
    deadline = time.time() + 10
    while not Log.objects.filter(token_id=probe.pk).exists() and time.time() < deadline:
        time.sleep(0.1)
    one = Log.objects.get(token_id=probe.pk).quota
    assert one > 0

    budget = 5 * one + one // 2
    token = make_token(user, name="limited", unlimited_quota=False, remain_quota=budget)
    codes: list[int] = []

    def fire(node: Node) -> None:
        for _ in range(6):
            codes.append(chat(node, token.key, body).status_code)

    threads = [threading.Thread(target=fire, args=(node,)) for node in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    ok = codes.count(200)
    assert 1 <= ok <= 5 and len(codes) == 24
    deadline = time.time() + 10
    while Log.objects.filter(token_id=token.pk).count() < ok and time.time() < deadline:
        time.sleep(0.1)
    spent = sum(Log.objects.filter(token_id=token.pk).values_list("quota", flat=True))
    assert spent == ok * one <= budget
    assert Token.objects.get(pk=token.pk).remain_quota == budget - spent >= 0


def test_an_option_changed_on_one_node_is_in_force_on_the_other_within_a_second(two_nodes) -> None:
    a, b = two_nodes
    name = f"Gateway {uuid.uuid4().hex[:6]}"
    assert httpx.get(f"{b.url}/api/status", timeout=5).json()["data"]["system_name"] != name  # b has it cached
    put = httpx.put(f"{a.url}/api/option/", json={"key": "SystemName", "value": name}, headers=root_headers(),
                    timeout=10)
    assert put.json()["success"] is True
    changed = time.time()
    seen = None
    while time.time() - changed < 1.0:
        if httpx.get(f"{b.url}/api/status", timeout=5).json()["data"]["system_name"] == name:
            seen = time.time() - changed
            break
        time.sleep(0.02)
    assert seen is not None, "node b still serves the old option a second later"


def test_midjourney_polling_runs_once_per_interval_not_once_per_node(tmp_path: Path, setup, task_upstream) -> None:
    _, _, _user, _token, client = setup
    queue = f"deploy-poll-{uuid.uuid4().hex[:8]}"  # its own queue: other runs may share the broker
    env = {"CELERY_EMBEDDED": "true", "TASK_POLL_INTERVAL": "1", "CELERY_QUEUE": queue}
    nodes = [start_node(tmp_path / name, workers=1, **env) for name in ("a", "b")]
    try:
        mj_id = client.post("/mj/submit/imagine", json={"prompt": "two nodes"}).json()["result"]
        assert mj_id  # pending upstream: every poll asks about it

        def polls() -> int:
            return sum(1 for s in task_upstream.requests if s.path.endswith("/mj/task/list-by-condition"))

        deadline = time.time() + 40  # until both beats are up and polling
        while polls() < 2 and time.time() < deadline:
            time.sleep(0.2)
        assert polls() >= 2
        before, t0 = polls(), time.time()
        time.sleep(6)
        made = polls() - before
        elapsed = time.time() - t0
        # Two beats each send the poll every second; once per interval is at most elapsed / 0.8 (+1).
        assert 2 <= made <= elapsed / 0.8 + 1, made
    finally:
        for node in nodes:
            node.stop()
