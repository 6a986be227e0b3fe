"""A local SMTP server (aiosmtpd, plain text: no STARTTLS offered), a local webhook receiver,
a real Celery worker on a queue of its own, and a gateway that sends its tasks there."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings

from newapi_site.options import update_option
from tests.conftest import ROOT, free_port, gateway_env, propagated, start_gateway


class _Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(envelope)
        return "250 OK"


@pytest.fixture(scope="module")
def smtp():
    inbox = _Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@dataclass
class Hooks:
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    status: int = 200
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


@pytest.fixture(scope="module")
def webhook():
    hooks = Hooks()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length") or 0))
            hooks.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(hooks.status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    hooks.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield hooks
    server.shutdown()


def start_worker(queue: str) -> subprocess.Popen:
    with open(Path(settings.DATA_DIR) / f"celery-{queue}.log", "wb") as log:  # the child keeps its copy
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "newapi_site",
                "worker",
                "-Q",
                queue,
                "--pool=solo",
                "-l",
                "info",
            ],
            cwd=ROOT,
            env=gateway_env(
                {"MEDIA_FETCH_ALLOW_PRIVATE": "true", "CELERY_QUEUE": queue}
            ),  # its own tasks too
            stdout=log,
            stderr=subprocess.STDOUT,
        )


@pytest.fixture(scope="module")
def notify_gateway(django_db_setup, django_db_blocker):
    """A gateway and a worker sharing a queue of their own."""
    queue = f"test-notify-{uuid.uuid4().hex[:8]}"
    worker = start_worker(queue)
    gw = start_gateway(
        {"CELERY_QUEUE": queue, "NOTIFY_LIMIT_COUNT": "2", "NOTIFICATION_LIMIT_DURATION_MINUTE": "10"}
    )
    gw.queue = queue  # a second gateway can join the same worker
    yield gw
    gw.stop()
    worker.terminate()
    try:
        worker.wait(15)
    except subprocess.TimeoutExpired:
        worker.kill()


@pytest.fixture
def mail_options(smtp, transactional_db):
    """SMTP pointed at the local server (each live test starts from flushed tables)."""
    controller, inbox = smtp
    update_option("SMTPServer", "127.0.0.1")
    update_option("SMTPPort", str(controller.port))
    update_option("SMTPAccount", "gateway@example.test")
    update_option("SMTPFrom", "gateway@example.test")
    update_option("SMTPToken", "")
    update_option("ServerAddress", "https://gw.example.test")
    propagated()
    inbox.messages.clear()
    return inbox


def wait_for(check, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def parse(body: bytes) -> dict[str, Any]:
    return json.loads(body)
