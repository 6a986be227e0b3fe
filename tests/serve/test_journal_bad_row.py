"""The embedded ledger's journal (SQLite, no Redis): a settlement the database refuses, and a line
that cannot be read, are dead-lettered and counted; every request after them is billed and the
journal position moves past them, instead of the writer retrying the same batch forever."""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import httpx
import orjson
import pytest
from django.conf import settings

from tests.serve.test_embedded_ledger import BODY, FLUSH, Server, _provision
from tests.serve.test_serve import run_in

pytestmark = [
    pytest.mark.relay,
    pytest.mark.skipif(bool(settings.REDIS_CONN_STRING), reason="the embedded ledger runs without Redis"),
]

DEAD = (
    "import django; django.setup(); from billing.writer import dead_letter_count; print(dead_letter_count())"
)


@pytest.fixture
def server(tmp_path: Path):
    srv = Server(tmp_path, WEB_WORKERS="1", BATCH_UPDATE_INTERVAL="0.2")
    yield srv
    srv.stop()


def _journal(srv: Server) -> Path:
    return srv.data_dir / "one-api.db.ledger" / f"{0:012d}.jsonl"


def test_a_settlement_the_database_refuses_is_dead_lettered_and_billing_goes_on(
    server, fake_upstream
) -> None:
    server.start()
    key = _provision(server, fake_upstream)
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer sk-{key}"}
    assert httpx.post(url, json=BODY, headers=headers, timeout=10).status_code == 200
    run_in(server.env, FLUSH)
    first = server.books()
    charge = first["logged"]
    assert first["logs"] == 1 and charge > 0

    with sqlite3.connect(server.data_dir / "one-api.db") as db:
        uid = db.execute("SELECT id FROM users WHERE username = 'carol'").fetchone()[0]
    # Fault injection: SQLite refuses an integer over 2**63 (OverflowError), as PostgreSQL or
    # MySQL refuse other values; plus a line no settlement can be read from.
    refused = {
        "user_id": uid,
        "token_id": 0,
        "channel_id": 0,
        "user_delta": 0,
        "token_delta": 0,
        "quota": 2**63 + 5,
        "counted": True,
        "log": None,
    }
    with open(_journal(server), "ab") as fh:
        fh.write(orjson.dumps(refused) + b"\n" + b"{not a settlement\n")

    for _ in range(3):
        assert httpx.post(url, json=BODY, headers=headers, timeout=10).status_code == 200
    try:
        run_in(server.env, FLUSH)  # the journal is written out, dead letters included
    except subprocess.CalledProcessError as exc:
        pytest.fail(f"the journal was not written out: {exc.stderr[-500:]}")

    books = server.books()
    assert books["logs"] == books["requests"] == 4
    assert books["logged"] == books["used"] == books["token_used"] == books["channel_used"] == 4 * charge
    assert books["quota"] == first["quota"] - 3 * charge
    assert run_in(server.env, DEAD).splitlines()[-1] == "2"
    with sqlite3.connect(server.data_dir / "one-api.db") as db:
        mark = db.execute("SELECT segment, position FROM billing_journal_mark WHERE id = 1").fetchone()
        dead = dict(db.execute("SELECT payload, error FROM billing_dead_settlements").fetchall())
        leftover = db.execute("SELECT count(*) FROM billing_applied_settlements").fetchone()[0]
    assert mark == (0, _journal(server).stat().st_size)
    assert set(dead) == {orjson.dumps(refused).decode(), "{not a settlement"}
    assert "unreadable" in dead["{not a settlement"]
    assert leftover == 0  # ids are only kept until the position moves past them
