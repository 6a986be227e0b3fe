"""`manage.py serve` processes sharing this test session's database and Redis, as nodes behind a
load balancer would."""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, gateway_env, wait_port


@dataclass
class Node:
    proc: subprocess.Popen
    port: int
    data_dir: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 60) -> None:
        """The socket is bound before the workers run: wait until a worker answers."""
        deadline = time.time() + timeout
        while True:
            try:
                httpx.get(f"{self.url}/api/status", timeout=5)
                return
            except httpx.TransportError:
                if time.time() > deadline or self.proc.poll() is not None:
                    raise
                time.sleep(0.1)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return (self.data_dir / "serve.log").read_text(errors="replace")


def start_node(data_dir: Path, workers: int = 2, **extra: str) -> Node:
    """A serve process on its own port and data directory, web workers only unless told otherwise."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = gateway_env({"DATA_DIR": str(data_dir), "PORT": str(port), "WEB_WORKERS": str(workers),
                       "CELERY_EMBEDDED": "false", **extra})
    log = open(data_dir / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "manage.py", "serve"], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)
    wait_port(port, timeout=30, proc=proc)
    node = Node(proc, port, data_dir)
    node.wait_ready()
    return node
