"""Readiness (/healthz) against real PostgreSQL and Redis, and CELERY_EMBEDDED=false."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port, live, start_gateway
from tests.serve.test_serve import children, serve, wait_answering


@live
def test_healthz_is_ready_when_database_and_redis_answer(gateway) -> None:
    resp = httpx.get(f"{gateway.url}/healthz", timeout=5)
    assert resp.status_code == 200
    assert resp.json() == {"status": "ok", "database": "ok", "redis": "ok"}


@live
def test_healthz_is_503_when_redis_does_not_answer() -> None:
    closed = free_port()  # nothing listens there
    gw = start_gateway({"REDIS_CONN_STRING": f"redis://127.0.0.1:{closed}/0"})
    try:
        resp = wait_answering(f"{gw.url}/healthz")
        assert resp.status_code == 503
        body = resp.json()
        assert body["status"] == "unavailable" and body["database"] == "ok"
        assert body["redis"].startswith("error")
        assert httpx.get(f"{gw.url}/api/status", timeout=5).status_code == 200  # liveness stays up
    finally:
        gw.stop()


@live
def test_healthz_is_503_when_the_database_does_not_answer() -> None:
    closed = free_port()
    gw = start_gateway({"SQL_DSN": f"postgres://nobody@127.0.0.1:{closed}/nothing"})
    try:
        resp = wait_answering(f"{gw.url}/healthz")
        assert resp.status_code == 503
        assert resp.json()["database"].startswith("error")
    finally:
        gw.stop()


@pytest.fixture
def served_without_celery(tmp_path: Path):
    yield from serve(tmp_path, CELERY_EMBEDDED="false")


def test_celery_embedded_false_starts_web_workers_only(served_without_celery) -> None:
    proc, port, _env = served_without_celery
    assert wait_answering(f"http://127.0.0.1:{port}/api/status").status_code == 200
    cmdlines = [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in children(proc.pid)]
    assert sum(b"relay.edge.web_worker" in cmd for cmd in cmdlines) == 2
    assert not [cmd for cmd in cmdlines if b"celery" in cmd]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(20) == 0
