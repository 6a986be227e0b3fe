"""relay.edge.web_worker.prompt_reaping: Daphne forgets each request when it ends, not in a 1-second sweep.

Run in a child interpreter: importing daphne.server installs Twisted's asyncio reactor, which is
not something to do inside the test session. The fake protocol stands in for Twisted's request.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import asyncio, json
from relay.edge.web_worker import prompt_reaping
prompt_reaping()
from daphne.server import Server


class Protocol:
    def __init__(self):
        self.handled = []

    def handle_exception(self, exc):
        self.handled.append(repr(exc))


async def app(scope, receive, send):
    message = await receive()
    if message.get("fail"):
        raise RuntimeError("boom")


async def main():
    server = Server(application=app, endpoints=["tcp:port=0:interface=127.0.0.1"])  # never started
    server.connections = {}  # what Server.run() sets up
    out = {}

    # 1. the application ends first, the request's connection closes after
    p1 = Protocol()
    server.protocol_connected(p1)
    queue = server.create_application(p1, {"type": "http"})
    queue.put_nowait({"type": "http.request"})
    await asyncio.sleep(0.01)
    out["ended_still_connected"] = p1 in server.connections and "application_instance" not in server.connections[p1]
    server.protocol_disconnected(p1)
    out["ended_then_closed_gone"] = p1 not in server.connections

    # 2. the connection closes first (a client that left), the application ends after
    p2 = Protocol()
    server.protocol_connected(p2)
    queue = server.create_application(p2, {"type": "http"})
    server.protocol_disconnected(p2)
    out["closed_while_running_kept"] = p2 in server.connections
    queue.put_nowait({"type": "http.request"})
    await asyncio.sleep(0.01)
    out["closed_then_ended_gone"] = p2 not in server.connections

    # 3. an application error still reaches the protocol (Daphne answers 500)
    p3 = Protocol()
    server.protocol_connected(p3)
    queue = server.create_application(p3, {"type": "http"})
    queue.put_nowait({"type": "http.request", "fail": True})
    await asyncio.sleep(0.01)
    out["error_handled"] = p3.handled
    server.protocol_disconnected(p3)
    out["error_gone"] = p3 not in server.connections
    print(json.dumps(out))


asyncio.new_event_loop().run_until_complete(main())
"""


def test_finished_requests_are_reaped_at_once_in_either_order():
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out == {
        "ended_still_connected": True,
        "ended_then_closed_gone": True,
        "closed_while_running_kept": True,
        "closed_then_ended_gone": True,
        "error_handled": ["RuntimeError('boom')"],
        "error_gone": True,
    }
    assert "Exception inside application: boom" in done.stderr
