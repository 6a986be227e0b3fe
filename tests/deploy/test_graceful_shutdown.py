"""SIGTERM to `manage.py serve` during streams: no new connections, every stream completes and is
billed exactly, the queued billing writes are flushed, exit 0."""

from __future__ import annotations

import signal
import socket
import threading
import time
from pathlib import Path

import httpx

from accounts.models import User
from billing.models import Log
from tests.conftest import live, make_channel, make_token, make_user
from tests.deploy.nodes import start_node

STREAMS = 6


def stream(url: str, key: str, body: dict, first_chunk: threading.Event | None, out: list) -> None:
    text = []
    try:
        with httpx.stream("POST", url, json=body, headers={"Authorization": f"Bearer sk-{key}"}, timeout=30) as resp:
            for chunk in resp.iter_text():
                text.append(chunk)
                if first_chunk is not None:
                    first_chunk.set()
        out.append("".join(text))
    except Exception as exc:
        out.append(exc)


def refused(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return False
    except OSError:
        return True


@live
def test_sigterm_lets_every_stream_finish_and_bills_it(tmp_path: Path, fake_upstream) -> None:
    make_channel(fake_upstream.base_url, key="slow")  # the fake streams 40 tokens over two seconds
    user = make_user("graceful", quota=50_000_000)
    token = make_token(user)
    node = start_node(tmp_path / "node", SHUTDOWN_GRACE_SECONDS="20", BATCH_UPDATE_INTERVAL="5")
    url = f"{node.url}/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": "hi"}]}

    reference: list = []
    stream(url, token.key, body, None, reference)  # one stream first: what one costs
    assert isinstance(reference[0], str) and reference[0].rstrip().endswith("data: [DONE]")
    deadline = time.time() + 15
    while not Log.objects.filter(token_id=token.pk).exists() and time.time() < deadline:
        time.sleep(0.1)
    one = Log.objects.get(token_id=token.pk).quota
    assert one > 0

    results: list = []
    started = [threading.Event() for _ in range(STREAMS)]
    threads = [threading.Thread(target=stream, args=(url, token.key, body, started[i], results))
               for i in range(STREAMS)]
    for t in threads:
        t.start()
    for event in started:
        assert event.wait(10)
    node.proc.send_signal(signal.SIGTERM)
    t0 = time.time()
    while not refused(node.port) and time.time() - t0 < 2:
        time.sleep(0.05)
    assert refused(node.port), "still accepting connections after SIGTERM"
    assert any(t.is_alive() for t in threads), "the streams ended before the check: the test proves nothing"

    for t in threads:
        t.join(30)
    assert node.proc.wait(40) == 0
    assert len(results) == STREAMS
    for text in results:
        assert isinstance(text, str), text
        assert text.count(" tok") == 40 and text.rstrip().endswith("data: [DONE]")

    # Billed, and already written when serve exits (BATCH_UPDATE_INTERVAL is longer than the test waited).
    quotas = list(Log.objects.filter(token_id=token.pk).values_list("quota", flat=True))
    assert quotas == [one] * (STREAMS + 1)
    assert User.objects.get(pk=user.pk).used_quota == one * (STREAMS + 1)
    assert "exited with" not in node.log()


PROVISION_SLOW = """
import django; django.setup()
from accounts.models import Token, User
from relay.models import Channel
Channel.objects.create(name="slow", type=1, key="slow", base_url="{base_url}", models="gpt-4o-mini", group="default")
user = User(username="carol", display_name="carol", quota=10_000_000, group="default")
user.set_password("carol-password-1"); user.save()
print(Token.objects.create(user_id=user.pk, name="carol", unlimited_quota=True).key)
"""

BOOKS = """
import django; django.setup()
from accounts.models import User
from billing.models import Log
print(Log.objects.filter(type=2).count(), sum(Log.objects.filter(type=2).values_list("quota", flat=True)),
      User.objects.get(username="carol").used_quota)
"""


def test_sigterm_on_the_embedded_setup_finishes_and_bills_streams(tmp_path: Path, fake_upstream) -> None:
    """The same on what `make run` gives: SQLite, no Redis, the embedded ledger in the serve parent."""
    from tests.serve.test_serve import run_in, serve, wait_answering

    for proc, port, env in serve(tmp_path, SHUTDOWN_GRACE_SECONDS="20"):
        wait_answering(f"http://127.0.0.1:{port}/api/status")
        key = run_in(env, PROVISION_SLOW.format(base_url=fake_upstream.base_url)).splitlines()[-1]
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        body = {"model": "gpt-4o-mini", "stream": True, "stream_options": {"include_usage": True},
                "messages": [{"role": "user", "content": "hi"}]}
        results: list = []
        started = [threading.Event() for _ in range(3)]
        threads = [threading.Thread(target=stream, args=(url, key, body, started[i], results)) for i in range(3)]
        for t in threads:
            t.start()
        for event in started:
            assert event.wait(10)
        proc.send_signal(signal.SIGTERM)
        for t in threads:
            t.join(30)
        assert proc.wait(40) == 0
        assert len(results) == 3 and all(isinstance(r, str) and r.count(" tok") == 40 for r in results), results
        count, logged, used = map(int, run_in(env, BOOKS).split())
        assert count == 3 and logged == used and used > 0 and logged % 3 == 0
