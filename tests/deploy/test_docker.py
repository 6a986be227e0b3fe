"""docker/ without a Docker daemon: the compose file parses and wires the services as documented,
the Dockerfile uses the build script and the entrypoint, the build script builds the project's
wheel, and the entrypoint migrates then serves under plain bash."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import yaml

from tests.conftest import ROOT, free_port
from tests.serve.test_serve import wait_answering

DOCKER = ROOT / "docker"


def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def test_compose_names_the_services_commands_and_variables() -> None:
    services = compose()["services"]
    assert {"web", "worker", "beat", "postgres", "redis"} <= set(services)
    web, worker, beat = services["web"], services["worker"], services["beat"]
    assert web["command"][-2:] == ["manage.py", "serve"]
    assert web["environment"]["CELERY_EMBEDDED"] == "false"
    assert "3000:3000" in web["ports"]
    assert worker["command"][:4] == ["celery", "-A", "newapi_site", "worker"]
    assert beat["command"][:4] == ["celery", "-A", "newapi_site", "beat"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["SQL_DSN"].startswith("postgres://") and "@postgres:5432/" in env["SQL_DSN"]
        assert env["REDIS_CONN_STRING"] == "redis://redis:6379/0"
        assert "SESSION_SECRET" in env
        assert "data:/data" in services[name]["volumes"]
        deps = services[name]["depends_on"]
        assert deps["postgres"]["condition"] == deps["redis"]["condition"] == "service_healthy"
    for name in ("worker", "beat"):  # they start once web has migrated the database
        assert services[name]["depends_on"]["web"]["condition"] == "service_healthy"
    assert services["postgres"]["healthcheck"]["test"] and services["redis"]["healthcheck"]["test"]
    assert "pgdata:/var/lib/postgresql/data" in services["postgres"]["volumes"]
    assert {"data", "pgdata"} <= set(compose()["volumes"])
    text = (DOCKER / "compose.yaml").read_text()
    assert "# mysql:" in text and "tcp(mysql:3306)" in text  # the commented MySQL variant


def test_env_example_sets_a_session_secret() -> None:
    lines = (DOCKER / ".env.example").read_text().splitlines()
    values = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))
    assert values["SESSION_SECRET"] and values["SESSION_SECRET"] != "random_string"


def test_dockerfile_is_multi_stage_non_root_with_healthcheck() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    froms = [line for line in text.splitlines() if line.startswith("FROM ")]
    assert len(froms) == 2 and all("python:3.11-slim" in line for line in froms)
    assert "build.sh wheels" in text and "build.sh install" in text
    assert "USER newapi" in text and "EXPOSE 3000" in text and 'VOLUME ["/data"]' in text
    assert "HEALTHCHECK" in text and "/api/status" in text
    assert "docker/entrypoint.sh" in text and '"manage.py", "serve"' in text
    for script in ("build.sh", "entrypoint.sh"):
        subprocess.run(["bash", "-n", str(DOCKER / script)], check=True)


def test_build_script_builds_the_project_wheel(tmp_path: Path) -> None:
    env = {**os.environ, "WHEEL_NO_DEPS": "1", "PYTHON": sys.executable}
    subprocess.run(["bash", str(DOCKER / "build.sh"), "wheels", str(tmp_path)], env=env, check=True,
                   capture_output=True, timeout=300)
    wheels = list(tmp_path.glob("newapi_django-*.whl"))
    assert len(wheels) == 1
    names = zipfile.ZipFile(wheels[0]).namelist()
    assert "relay/management/commands/serve.py" in names and "newapi_site/settings.py" in names
    bad = subprocess.run(["bash", str(DOCKER / "build.sh"), "nonsense"], capture_output=True, text=True)
    assert bad.returncode == 2 and "usage" in bad.stderr


def entrypoint_env(tmp_path: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SQL_DSN", "REDIS_CONN_STRING", "SQLITE_PATH", "LOG_SQL_DSN")}
    env.update(DATA_DIR=str(tmp_path), PORT=str(port), WEB_WORKERS="1", SESSION_SECRET="entrypoint-test",
               CELERY_EMBEDDED="false", PYTHON=sys.executable, PATH=f"{Path(sys.executable).parent}:{env['PATH']}")
    return env


def test_entrypoint_migrates_then_serves_and_passes_sigterm(tmp_path: Path) -> None:
    port = free_port()
    log = open(tmp_path / "entrypoint.log", "wb")
    proc = subprocess.Popen(["bash", str(DOCKER / "entrypoint.sh"), "python", "manage.py", "serve"],
                            cwd=tmp_path, env=entrypoint_env(tmp_path, port), stdout=log, stderr=subprocess.STDOUT)
    try:
        resp = wait_answering(f"http://127.0.0.1:{port}/api/status", timeout=90)
        assert resp.status_code == 200
        assert (tmp_path / "one-api.db").exists()  # migrated into DATA_DIR before serving
        login = httpx.post(f"http://127.0.0.1:{port}/api/user/login", json={"username": "root", "password": "123456"},
                           timeout=10)
        assert login.json()["success"] is True  # ensure_root ran
        # exec: the server replaced bash, so the signal reaches it and it exits cleanly
        assert Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")[1:3] == [b"manage.py", b"serve"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert b"migrating the database" in (tmp_path / "entrypoint.log").read_bytes()


def test_entrypoint_runs_other_commands_without_migrating(tmp_path: Path) -> None:
    out = subprocess.run(["bash", str(DOCKER / "entrypoint.sh"), "python", "-c", "import os; print(os.getcwd())"],
                         env=entrypoint_env(tmp_path, free_port()), capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    assert out.stdout.strip() == str(ROOT)  # runs from the application directory
    assert "migrating" not in out.stderr and not (tmp_path / "one-api.db").exists()
