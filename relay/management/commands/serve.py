"""`manage.py serve`: the production server behind `make run`.

The parent binds 0.0.0.0:$PORT (one SO_REUSEPORT socket per worker, so the kernel spreads the
connections) and starts WEB_WORKERS Daphne workers, each accepting on its socket (`--fd`), plus
one Celery worker with embedded beat. It forwards SIGINT/SIGTERM, waits for the children, and
restarts a web worker that dies unexpectedly (a crash loop ends the server with a non-zero status).
On SIGTERM the workers stop accepting and finish what is in flight (SHUTDOWN_GRACE_SECONDS), the
queued billing writes are flushed and the server exits 0.
With CELERY_EMBEDDED=false it starts no Celery worker or beat: they run as their own services.

With Redis, the parent also writes the queued billing batches to the database (a thread that
wakes every BATCH_UPDATE_INTERVAL, plus once after the children exit), so that work never takes
a web worker's GIL while it is serving requests. Its first round writes whatever a crash left in
processing; every round refunds quota holds past their deadline (billing/writer.py). Without
Redis, the parent owns the embedded ledger (billing/ledger_owner.py): every balance, and the
journal it writes to the database.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.admin_login import default_password_warning
from billing import local_ledger, writer
from newapi_site import bus, redis
from relay.edge.web_worker import PatchTargetMissing, check_patch_targets, patch_targets

STOP_GRACE_SECONDS = 8.0
MAX_RESTARTS_PER_MINUTE = 5


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGTERM it if the parent dies, even by SIGKILL (Linux)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:  # not Linux/glibc: orphans are then possible
        pass


def bind_listener(host: str, port: int, reuse_port: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def bind_listeners(host: str, port: int, count: int) -> list[socket.socket]:
    """One listening socket per web worker, all on the port (SO_REUSEPORT), so the kernel spreads
    new connections over the workers. On one shared socket, whichever worker wakes first accepts
    a whole burst: a benchmark's 50 keep-alive connections all landed on one of two workers.
    A plain bind first makes a port another server holds fail loudly instead of being shared."""
    bind_listener(host, port).close()
    if count == 1 or not hasattr(socket, "SO_REUSEPORT"):
        return [bind_listener(host, port)] * count
    return [bind_listener(host, port, reuse_port=True) for _ in range(count)]


def web_command(fd: int) -> list[str]:
    # -v 0: no per-request access log (it costs measurable CPU per request).
    return [
        sys.executable,
        "-m",
        "relay.edge.web_worker",
        "--fd",
        str(fd),
        "-v",
        "0",
        "newapi_site.asgi:application",
    ]


def celery_command() -> list[str]:
    schedule = Path(settings.DATA_DIR) / "celerybeat-schedule"
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "newapi_site",
        "worker",
        "-B",
        "-s",
        str(schedule),
        "--concurrency=1",
        "-l",
        "warning",
    ]


def fresh_metrics_dir() -> Path | None:
    """With METRICS_ENABLED, a new prometheus_client multiprocess directory for this server's
    workers (they inherit it through the environment); counts a crashed server left are removed."""
    if not settings.METRICS_ENABLED:
        return None
    for old in Path(settings.DATA_DIR).glob("prometheus-*"):
        pid = old.name.removeprefix("prometheus-")
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(old, ignore_errors=True)
    path = Path(settings.DATA_DIR) / f"prometheus-{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def check_web_worker_patches() -> None:
    """Each web worker refuses to start on a Daphne/Twisted its patches do not fit; checked here
    first, so that serve exits with the reason instead of restarting workers that cannot start."""
    try:
        check_patch_targets(patch_targets())
    except PatchTargetMissing as exc:
        raise CommandError(f"web workers cannot start: {exc}") from None


class Supervisor:
    def __init__(self, socks: list[socket.socket], with_celery: bool) -> None:
        self.socks = socks  # one per web worker slot; a restarted worker takes over its slot's socket
        self.workers = len(socks)
        self.with_celery = with_celery
        self.children: dict[int, tuple[str, int, subprocess.Popen]] = {}
        self.stopping = False
        self.restarts: list[float] = []
        self.cwd = str(settings.BASE_DIR)
        self.drain_stop = threading.Event()
        self.drainer: threading.Thread | None = None

    def spawn(self, kind: str, slot: int = 0) -> None:
        if kind == "web":
            fd = self.socks[slot].fileno()
            env = {**os.environ, "BILLING_DRAIN_IN_WORKER": "false"} if self.drainer else None
            proc = subprocess.Popen(
                web_command(fd), pass_fds=(fd,), cwd=self.cwd, env=env, preexec_fn=_die_with_parent
            )
        else:
            proc = subprocess.Popen(celery_command(), cwd=self.cwd, preexec_fn=_die_with_parent)
        self.children[proc.pid] = (kind, slot, proc)

    def start(self) -> None:
        bus.ensure_listener()  # this process caches options and rows too (the billing writer)

        if redis.redis_enabled():
            self.drainer = threading.Thread(
                target=writer.drain_forever, args=(self.drain_stop,), name="billing-writer", daemon=True
            )
            self.drainer.start()
        else:  # the embedded ledger: this process owns the balances and writes the journal out
            local_ledger.start_owner()
        for slot in range(self.workers):
            self.spawn("web", slot)
        if self.with_celery:
            self.spawn("celery")

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """Each web worker stops accepting, lets its requests and streams finish (up to
        SHUTDOWN_GRACE_SECONDS) and exits; our copies of the listening sockets close now, so the
        kernel queues no new connection on a socket nobody will accept from."""
        self.stopping = True
        for sock in self.socks:
            sock.close()
        for _kind, _slot, proc in self.children.values():
            if proc.poll() is None:
                proc.send_signal(signum)

    def reap(self) -> int:
        """Wait for all children after stop(); kill stragglers past the grace period."""
        deadline = time.monotonic() + settings.SHUTDOWN_GRACE_SECONDS + STOP_GRACE_SECONDS
        worst = 0
        for kind, _slot, proc in self.children.values():
            try:
                code = proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                code = proc.wait()
            if code not in (0, -signal.SIGTERM, -signal.SIGINT):
                sys.stderr.write(f"serve: {kind} worker {proc.pid} exited with {code}\n")
                worst = 1
        if self.drainer is not None:  # the children are gone: write what they queued last
            self.drain_stop.set()
            self.drainer.join(STOP_GRACE_SECONDS)
        local_ledger.stop_owner()
        return worst

    def watch(self) -> int:
        """Poll children until a stop signal; restart dead workers, give up on a crash loop."""
        while not self.stopping:
            for pid, (kind, slot, proc) in list(self.children.items()):
                if proc.poll() is None:
                    continue
                del self.children[pid]
                now = time.monotonic()
                self.restarts = [t for t in self.restarts if now - t < 60] + [now]
                sys.stderr.write(f"serve: {kind} worker {pid} exited with {proc.returncode}\n")
                if len(self.restarts) > MAX_RESTARTS_PER_MINUTE:
                    sys.stderr.write("serve: workers keep dying, shutting down\n")
                    self.stop()
                    self.reap()
                    return 1
                self.spawn(kind, slot)
            time.sleep(0.2)
        return self.reap()


class Command(BaseCommand):
    help = "Serve the gateway: WEB_WORKERS Daphne workers on one port plus a Celery worker with beat."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--host", default="0.0.0.0")
        parser.add_argument("--port", type=int, default=None, help="default: settings.PORT")
        parser.add_argument("--workers", type=int, default=None, help="default: settings.WEB_WORKERS")
        parser.add_argument("--no-celery", action="store_true", help="web workers only")

    def handle(self, *args, **opts) -> None:
        port = opts["port"] or settings.PORT
        workers = opts["workers"] or settings.WEB_WORKERS
        check_web_worker_patches()
        try:
            socks = bind_listeners(opts["host"], port, workers)
        except OSError as exc:
            raise CommandError(f"cannot listen on {opts['host']}:{port}: {exc}") from exc
        # CELERY_EMBEDDED=false: the worker and beat run as their own services (docker/compose.yaml).
        sup = Supervisor(socks, with_celery=settings.EMBEDDED_CELERY and not opts["no_celery"])
        signal.signal(signal.SIGTERM, lambda signum, frame: sup.stop(signal.SIGTERM))
        signal.signal(signal.SIGINT, lambda signum, frame: sup.stop(signal.SIGINT))
        metrics_dir = fresh_metrics_dir()
        sup.start()
        self.stdout.write(f"serving on http://{opts['host']}:{port} with {workers} web workers", ending="\n")
        if warning := default_password_warning():
            self.stderr.write(self.style.WARNING(warning))
        self.stdout.flush()
        code = sup.watch()
        for sock in socks:
            sock.close()
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
        if code:
            sys.exit(code)
