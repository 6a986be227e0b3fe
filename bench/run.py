"""`make bench`: the gateway as a user runs it (PostgreSQL + Redis, `manage.py serve`) against a fake upstream.
`BENCH_DB=embedded make bench`: the same on what `make run` gives (SQLite in DATA_DIR, no Redis).

Steps: install wrk if missing, start the fake upstream (bench/mock_upstream.py) on 127.0.0.1:18080,
create a fresh PostgreSQL database and flush Redis db 8, `migrate` + `ensure_root` + `serve` on a
free port, create a channel and a normal user's token through /api, then run bench/run_bench.py
(direct baseline + ours, + LiteLLM when BENCH_PEERS=litellm). Extra arguments go to run_bench.py.
The table is printed and the JSON lands in bench/results/.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MOCK_PORT = 18080
PG = "postgres://postgres@127.0.0.1:5432"
REDIS = "redis://127.0.0.1:6379/8"
LITELLM_PORT = 4000


def log(msg: str) -> None:
    print(f"[bench] {msg}", flush=True)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    log("wrk missing: apt-get install -y wrk")
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
    if not shutil.which("wrk"):
        sys.exit("[bench] wrk is not installed and could not be installed (need root + apt-get); skipping the benchmark")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen | None = None, timeout: float = 60) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            sys.exit(f"[bench] process for {url} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    sys.exit(f"[bench] {url} did not answer within {timeout:.0f}s")


def psql(sql: str) -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(sql)


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS).flushdb()


EMBEDDED = os.environ.get("BENCH_DB", "postgres") == "embedded"


def gateway_env(db: str, port: int, data_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(PORT=str(port), DATA_DIR=str(data_dir), SESSION_SECRET="bench-session-secret",
               GLOBAL_API_RATE_LIMIT_ENABLE="false")
    env.pop("SQLITE_PATH", None)
    if EMBEDDED:  # `make run`'s defaults: SQLite at DATA_DIR/one-api.db, no Redis
        env.pop("SQL_DSN", None)
        env.pop("REDIS_CONN_STRING", None)
    else:
        env.update(SQL_DSN=f"{PG}/{db}", REDIS_CONN_STRING=REDIS)
    return env


def audit_dsn(env: dict[str, str], data_dir: Path) -> str:
    return f"sqlite:{data_dir / 'one-api.db'}" if EMBEDDED else env["SQL_DSN"]


def api(client: httpx.Client, method: str, path: str, user_id: int | None = None, **kw) -> dict:
    headers = {"New-Api-User": str(user_id)} if user_id else {}
    body = client.request(method, path, headers=headers, **kw).json()
    if not body.get("success"):
        sys.exit(f"[bench] {method} {path} failed: {body}")
    return body


def provision(base: str) -> str:
    """Channel (as root) and a normal user's token, all through /api; returns the sk- key."""
    with httpx.Client(base_url=base, timeout=30) as root:
        me = api(root, "POST", "/api/user/login", json={"username": "root", "password": "123456"})["data"]
        rid = me["id"]
        api(root, "POST", "/api/channel/", rid, json={
            "name": "bench-mock", "type": 1, "key": "mock-key", "base_url": f"http://127.0.0.1:{MOCK_PORT}",
            "models": "gpt-4o-mini,text-embedding-3-small", "group": "default"})
        api(root, "POST", "/api/user/", rid, json={"username": "bencher", "password": "bench-password-1",
                                                   "display_name": "bencher"})
        users = api(root, "GET", "/api/user/search", rid, params={"keyword": "bencher"})["data"]
        users = users["items"] if isinstance(users, dict) else users
        uid = next(u["id"] for u in users if u["username"] == "bencher")
        api(root, "PUT", "/api/user/", rid, json={"id": uid, "username": "bencher", "display_name": "bencher",
                                                  "quota": 10**13, "group": "default"})
    with httpx.Client(base_url=base, timeout=30) as user:
        api(user, "POST", "/api/user/login", json={"username": "bencher", "password": "bench-password-1"})
        api(user, "POST", "/api/token/", uid, json={"name": "bench", "unlimited_quota": True, "expired_time": -1})
        tokens = api(user, "GET", "/api/token/", uid)["data"]
        tokens = tokens["items"] if isinstance(tokens, dict) else tokens
        key = next(t["key"] for t in tokens if t["name"] == "bench")
    return key if key.startswith("sk-") else f"sk-{key}"


def stop(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str]) -> int:
    ensure_wrk()
    py = sys.executable
    data_dir = Path(os.environ.get("BENCH_DATA_DIR", f"/tmp/newapi-bench-{os.getpid()}"))
    data_dir.mkdir(parents=True, exist_ok=True)
    db = f"newapi_bench_{os.getpid()}"
    port = free_port()
    env = gateway_env(db, port, data_dir)
    procs: list[subprocess.Popen] = []
    try:
        mock = subprocess.Popen([py, str(HERE / "mock_upstream.py"), "--port", str(MOCK_PORT), "--workers", "2"],
                                stdout=subprocess.DEVNULL)
        procs.append(mock)
        wait_http(f"http://127.0.0.1:{MOCK_PORT}/health", mock)
        if not EMBEDDED:
            psql(f'CREATE DATABASE "{db}"')
            flush_redis()
        for cmd in (["migrate", "--noinput"], ["ensure_root"]):
            subprocess.run([py, "manage.py", *cmd], cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
        serve_log = open(data_dir / "serve.log", "wb")
        gateway = subprocess.Popen([py, "manage.py", "serve"], cwd=ROOT, env=env, stdout=serve_log,
                                   stderr=subprocess.STDOUT)
        procs.append(gateway)
        base = f"http://127.0.0.1:{port}"
        wait_http(f"{base}/api/status", gateway)
        key = provision(base)
        log(f"gateway on {base} (pid {gateway.pid}, {'embedded: SQLite, no Redis' if EMBEDDED else 'PostgreSQL + Redis'}), "
            f"user token {key[:10]}...")
        harness = [py, str(HERE / "run_bench.py"), "--gateway", "ours", f"{base}/v1", key]
        if "litellm" in os.environ.get("BENCH_PEERS", ""):
            litellm = subprocess.Popen(["bash", str(HERE / "peers/litellm/run_litellm.sh")],
                                       env={**os.environ, "PORT": str(LITELLM_PORT)})
            procs.append(litellm)
            wait_http(f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness", litellm, timeout=600)
            harness += ["--gateway", "litellm", f"http://127.0.0.1:{LITELLM_PORT}/v1", "sk-bench-master-key"]
        out = next((argv[i + 1] for i, a in enumerate(argv) if a == "--out" and i + 1 < len(argv)), None)
        if out is None:
            out = str(HERE / "results" / time.strftime("bench-%Y-%m-%dT%H%M%SZ.json", time.gmtime()))
            argv = [*argv, "--out", out]
        code = subprocess.run(harness + argv).returncode
        held = 0
        if os.environ.get("BENCH_HOLD_STREAMS", "1000") != "0":
            from hold_streams import hold

            streams = int(os.environ.get("BENCH_HOLD_STREAMS", "1000"))
            report = hold(port, key, gateway.pid, streams)
            held = report["completed"]
            log(f"held {report['completed']}/{streams} streams; worker RSS MB start {report['rss_mb_start']} "
                f"peak {report['rss_mb_peak']}")
            Path(out).with_suffix(".streams.json").write_text(json.dumps(report, indent=2))
            if report["completed"] != streams:
                code = code or 1
        stop(gateway)  # shutdown must flush every batched log row and counter before the audit
        if code == 0 or Path(out).exists():
            from billing_audit import answered_requests, audit

            books = audit(audit_dsn(env, data_dir), answered_requests(Path(out), held))
            Path(out).with_suffix(".billing.json").write_text(json.dumps(books, indent=2))
            log(f"billing audit: {books['consume_logs']} log rows for >= {books['answered_at_least']} answered "
                f"requests, {books['logged_quota']} quota logged = user used {books['user_used_quota']} = "
                f"token used {books['token_used_quota']}: {'ok' if books['ok'] else '; '.join(books['problems'])}")
            if not books["ok"]:
                code = code or 1
        return code
    finally:
        for proc in reversed(procs):
            stop(proc)
        try:
            if not EMBEDDED:
                psql(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
                flush_redis()
        except Exception as exc:  # the run's result matters more than the cleanup
            log(f"could not drop {db}: {exc}")
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
