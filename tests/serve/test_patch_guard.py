"""The web worker refuses to start on a Daphne/Twisted that lacks an internal its patches need."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from relay.edge.web_worker import PatchTargetMissing, check_patch_targets, patch_targets

ROOT = Path(__file__).resolve().parents[2]


def test_the_installed_daphne_and_twisted_have_every_patched_attribute() -> None:
    targets = patch_targets()
    check_patch_targets(targets)
    named = {f"{where}.{name}" for where, _, names in targets for name in names}
    assert {
        "daphne.http_protocol.WebRequest.handleContentChunk",
        "twisted.web.http.HTTPChannel.allHeadersReceived",
        "twisted.internet.tcp.Connection.startWriting",
        "daphne.server.Server.create_application",
        "daphne.http_protocol.HTTPFactory.log",
        "daphne.http_protocol.HTTPFactory.buildProtocol",
    } <= named


def test_a_missing_attribute_is_named_with_the_installed_versions() -> None:
    class WebRequestWithoutChunks:  # stands in for a Daphne release that renamed the hook
        def __init__(self) -> None:
            pass

    with pytest.raises(PatchTargetMissing) as caught:
        check_patch_targets(
            [("daphne.http_protocol.WebRequest", WebRequestWithoutChunks, ("__init__", "handleContentChunk"))]
        )
    message = str(caught.value)
    assert "daphne.http_protocol.WebRequest.handleContentChunk" in message
    assert "__init__" not in message
    assert "daphne 4." in message and "twisted " in message and "pyproject.toml" in message
    assert caught.value.missing == ["daphne.http_protocol.WebRequest.handleContentChunk"]


def test_the_worker_exits_at_start_up_naming_what_is_missing() -> None:
    # A Twisted without HTTPChannel.allHeadersReceived: removed in the child before the worker starts.
    script = (
        "import sys; from twisted.web import http; del http.HTTPChannel.allHeadersReceived;"
        "sys.argv = ['daphne', '-b', '127.0.0.1', '-p', '0', 'newapi_site.asgi:application'];"
        "from relay.edge.web_worker import main; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], check=False, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "twisted.web.http.HTTPChannel.allHeadersReceived" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_exits_with_the_reason_before_starting_any_worker(tmp_path: Path) -> None:
    # Without the check in serve, its workers would die at start-up and be restarted in a loop.
    script = (
        "import sys, django; from twisted.web import http; del http.HTTPChannel.allHeadersReceived;"
        "django.setup(); from django.core.management import call_command;"
        "call_command('serve', '--no-celery', '--host', '127.0.0.1', '--port', '0', '--workers', '1')"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SQL_DSN", "REDIS_CONN_STRING", "SQLITE_PATH")}
    env.update(
        DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="newapi_site.settings", SESSION_SECRET="guard-test"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode != 0
    assert "twisted.web.http.HTTPChannel.allHeadersReceived" in done.stderr
    assert "exited with" not in done.stderr  # no worker was ever started
