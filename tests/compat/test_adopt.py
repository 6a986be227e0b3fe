"""Point the gateway at an existing One API / New API database and run `manage.py migrate`.

Each test copies a fixture (tests/fixtures) into a scratch database on SQLite, PostgreSQL or
MariaDB, runs `manage.py migrate` as a subprocess exactly as an operator would, then reads the result
through our models (probe.py, also a subprocess) and checks it against the fixture manifest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from .scratch_db import FIXTURES, Scratch, execute, make_scratch

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = json.loads((FIXTURES / "manifest.json").read_text())
PASSWORDS = {str(u["id"]): u["password"] for u in MANIFEST["users"]}
BACKENDS = ["sqlite", "postgres", "mysql"]
NEW_TABLES_FROM_ONE_API = ["midjourneys", "top_ups", "quota_data", "tasks"]


def _env(scratch: Scratch, tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("SQL_DSN", "SQLITE_PATH", "REDIS_CONN_STRING")}
    env.update(scratch.env, DATA_DIR=str(tmp / "data"), DJANGO_SETTINGS_MODULE="newapi_site.settings")
    return env


def migrate(scratch: Scratch, tmp: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", *args],
        cwd=ROOT,
        env=_env(scratch, tmp),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def probe(scratch: Scratch, tmp: Path) -> dict:
    done = subprocess.run(
        [sys.executable, "-m", "tests.compat.probe", json.dumps(PASSWORDS)],
        cwd=ROOT,
        env=_env(scratch, tmp),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture
def scratch_factory(tmp_path):
    made: list[Scratch] = []

    def make(backend: str, source: str | None) -> Scratch:
        scratch = make_scratch(backend, source, tmp_path)
        made.append(scratch)
        return scratch

    yield make
    for scratch in made:
        scratch.drop()


def _migrate_ok(scratch: Scratch, tmp: Path) -> str:
    done = migrate(scratch, tmp)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("source", ["one-api", "new-api"])
def test_existing_database_is_adopted_and_second_run_changes_nothing(
    scratch_factory, tmp_path, backend, source
):
    scratch = scratch_factory(backend, source)
    first = _migrate_ok(scratch, tmp_path)
    # the operator is told to back up before anything is converted
    assert "make a backup" in first
    assert first.index("make a backup") < first.index("migration accounts.0001_initial: marked applied")
    state = probe(scratch, tmp_path)
    check_against_manifest(state, source, backend)

    second = _migrate_ok(scratch, tmp_path)
    assert "No migrations to apply" in second and "make a backup" not in second
    again = probe(scratch, tmp_path)
    assert again["fingerprint"] == state["fingerprint"]
    assert again == state


def check_against_manifest(state: dict, source: str, backend: str) -> None:
    one = source == "one-api"
    facts = MANIFEST["files"][f"{source}.sqlite"]
    for table, count in facts["row_counts"].items():
        markers = len(state["options"]) if table == "options" else 0  # our Legacy* bookkeeping options
        assert state["counts"][table] == count + markers, table
    if one:
        for table in NEW_TABLES_FROM_ONE_API:
            assert state["counts"][table] == 0
        assert state["setups"] == 1  # a root exists, so the setup wizard counts as done
    log_types = {"topup": "1", "consume": "2", "manage": "3", "system": "4"}
    for name, count in facts["log_counts_by_type"].items():
        assert state["log_types"][log_types[name]] == count, name
    assert state["abilities_enabled"] == facts["abilities_enabled"]

    # quota columns are 64-bit, groups/models widened, model_mapping TEXT
    if backend != "sqlite":
        assert state["columns"]["users.quota"][0] == "bigint"
        assert state["columns"]["tokens.remain_quota"][0] == "bigint"
        assert state["columns"]["users.group"] == ["varchar", 64]
        assert state["columns"]["channels.model_mapping"][0] in ("text", "longtext")
        assert (
            state["columns"]["abilities.model"][0] == "text" or state["columns"]["abilities.model"][1] >= 255
        )

    prefix = "one_api" if one else "new_api"
    users = {u["id"]: u for u in state["users"].values()}
    for expected in MANIFEST["users"]:
        got = users[expected["id"]]
        assert got["login"], f"{expected['username']} cannot log in with the fixture password"
        assert got["role"] == expected["role"]
        assert got["quota"] == expected[f"{prefix}_quota"]
        assert got["used_quota"] == expected[f"{prefix}_used_quota"]
        assert got["group"] == expected["group"]
        if expected["username"] == "dave":  # deleted: One API status 3, New API deleted_at
            assert got["deleted"] and not got["live"] and not got["is_active"]
            assert got["status"] in (1, 2)
        else:
            assert not got["deleted"] and got["live"]
            assert (
                got["status"] == expected[f"{prefix}_status" if f"{prefix}_status" in expected else "status"]
            )
    root = next(u for u in state["users"].values() if u["id"] == 1)
    assert root["quota"] == (500_000_000_000_000 if one else 100_000_000) and root["is_active"]

    for expected in MANIFEST["tokens"]:
        got = state["tokens"][expected["key"]]
        assert got["live"]
        for name in ("user_id", "status", "remain_quota", "unlimited_quota", "expired_time"):
            assert got[name] == expected[name], (expected["name"], name)
        assert got["used_quota"] == expected[f"{prefix}_used_quota"]
        assert got["model_limits_enabled"] == expected["new_api_model_limits_enabled"]
        assert got["model_limits"] == expected["new_api_model_limits"]
        if one:  # One API's subnet keeps its CIDR ranges, one per line
            assert (
                got["allow_ips"] == "\n".join(expected["one_api_subnet"].split(","))
                if expected["one_api_subnet"]
                else got["allow_ips"] == ""
            )
            assert got["group"] == ""
        else:
            assert got["allow_ips"] == expected["new_api_allow_ips"]
            assert got["group"] == expected["new_api_group"]

    for expected in MANIFEST["channels"]:
        got = state["channels"].get(str(expected["id"]))
        if one and expected["one_api_type"] is None:
            assert got is None
            continue
        assert got["type"] == expected["new_api_type"], expected["name"]
        assert got["status"] == expected["status"]
        assert got["key"] == expected["key"]
        assert got["base_url"] == expected["new_api_base_url"]
        assert got["weight"] == expected["weight"]
        assert got["balance_is_float"]
        if expected["api_version"]:
            assert got["other"] == expected["api_version"]
    assert all(weight == state["channels"][str(cid)]["weight"] for cid, weight in state["abilities_weight"])

    if one:
        assert state["elapsed"] and state["use_times"] == [[i, ms // 1000] for i, ms in state["elapsed"]]
        assert state["options"]["LegacyImportSource"] == "one-api"
        assert int(state["options"]["LegacyOneApiImportedAt"]) > 0
    else:
        assert state["options"] == {"LegacyImportSource": "new-api"}


@pytest.mark.parametrize("backend", BACKENDS)
def test_empty_database_migrates_normally(scratch_factory, tmp_path, backend):
    scratch = scratch_factory(backend, None)
    out = _migrate_ok(scratch, tmp_path)
    assert "make a backup" not in out and "Applying accounts.0001_initial... OK" in out
    assert "No migrations to apply" in _migrate_ok(scratch, tmp_path)


@pytest.mark.parametrize("backend", BACKENDS)
def test_foreign_database_is_refused_untouched(scratch_factory, tmp_path, backend):
    scratch = scratch_factory(backend, None)
    execute(scratch, "CREATE TABLE customers (id integer PRIMARY KEY, name varchar(40))")
    execute(scratch, "CREATE TABLE users (id integer PRIMARY KEY, email varchar(40))")
    done = migrate(scratch, tmp_path)
    assert done.returncode != 0
    assert "Refusing to migrate" in done.stderr and "Nothing was changed" in done.stderr
    state = probe_tables(scratch, tmp_path)
    assert state == ["customers", "users"]


def probe_tables(scratch: Scratch, tmp: Path) -> list[str]:
    code = (
        "import django; django.setup()\n"
        "from django.db import connection\n"
        "from accounts.legacy.columns import table_names\n"
        "import json; print(json.dumps(sorted(table_names(connection))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=_env(scratch, tmp),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip())


@pytest.mark.parametrize("backend", ["postgres", "mysql"])
def test_narrow_quota_columns_are_widened_never_narrowed(scratch_factory, tmp_path, backend):
    scratch = scratch_factory(backend, "one-api")
    # An older schema with 32-bit token quotas; root's 5e14 user quota must survive as is.
    if backend == "postgres":
        execute(scratch, "ALTER TABLE tokens ALTER COLUMN remain_quota TYPE integer")
    else:
        execute(scratch, "ALTER TABLE tokens MODIFY remain_quota int DEFAULT 0")
    _migrate_ok(scratch, tmp_path)
    state = probe(scratch, tmp_path)
    assert state["columns"]["tokens.remain_quota"][0] == "bigint"
    assert state["users"]["root"]["quota"] == 500_000_000_000_000
    assert state["tokens"][MANIFEST["tokens"][4]["key"]]["remain_quota"] == 5_000_000
