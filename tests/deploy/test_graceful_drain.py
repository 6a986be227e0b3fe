"""One web worker (`python -m relay.edge.web_worker`, every patch applied, as serve starts it) on
SIGTERM: what a request has begun, or an answer has written, reaches its client before the
worker closes the connections."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    port = listener.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if k not in ("SQL_DSN", "REDIS_CONN_STRING", "SQLITE_PATH")}
    env.update(
        DJANGO_SETTINGS_MODULE="newapi_site.settings",
        DATA_DIR=str(tmp_path),
        SESSION_SECRET="drain-test",
        SHUTDOWN_GRACE_SECONDS="20",
    )
    fd = listener.fileno()
    cmd = [
        sys.executable,
        "-m",
        "relay.edge.web_worker",
        "--fd",
        str(fd),
        "-v",
        "0",
        "tests.deploy.drain_app:application",
    ]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, pass_fds=(fd,))
    listener.close()
    try:
        deadline = time.time() + 30
        while True:
            try:
                httpx.post(f"http://127.0.0.1:{port}/echo", content=b"", timeout=5)
                break
            except httpx.TransportError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(0.1)
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def stream(url: str, first_chunk: threading.Event, out: list) -> None:
    try:
        with httpx.stream("POST", url, content=b"hi", timeout=30) as resp:
            text = []
            for chunk in resp.iter_text():
                text.append(chunk)
                first_chunk.set()
        out.append("".join(text))
    except Exception as exc:
        out.append(exc)


def test_a_stream_that_ends_as_the_drain_checks_arrives_whole(worker) -> None:
    """The application returns in the step that writes its last bytes; the drain must not take
    'no application running' for 'everything sent'."""
    proc, port = worker
    results: list = []
    started = [threading.Event() for _ in range(3)]
    threads = [
        threading.Thread(target=stream, args=(f"http://127.0.0.1:{port}/stream", started[i], results))
        for i in range(3)
    ]
    for t in threads:
        t.start()
    for event in started:
        assert event.wait(10)
    proc.send_signal(signal.SIGTERM)
    for t in threads:
        t.join(30)
    assert proc.wait(30) == 0
    assert len(results) == 3
    for text in results:
        assert isinstance(text, str), text
        assert text.count("data: tok") == 20 and text.endswith("data: [DONE]\n\n")


def test_a_request_still_being_received_at_sigterm_is_answered(worker) -> None:
    """Headers in, half the body in, no application running yet: the request is in flight all the same."""
    proc, port = worker
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        conn.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345")
        time.sleep(0.3)  # the worker has read the head and half the body
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # several drain checks pass
        conn.sendall(b"67890")
        answer = b""
        while not answer.endswith(b"received 10"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"received 10"), answer
    assert proc.wait(30) == 0
