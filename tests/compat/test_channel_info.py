"""channels.channel_info in a New API database: adopted in place (our migration that adds it is
marked applied, the column kept as New API made it), New API's values read as written (bytes on
SQLite, json elsewhere), and what we write is the same layout."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from .scratch_db import execute
from .test_adopt import BACKENDS, ROOT, _env, migrate, scratch_factory  # noqa: F401 - a fixture

NEW_API_INFO = (
    '{"is_multi_key":true,"multi_key_size":3,"multi_key_status_list":{"1":3},'
    '"multi_key_disabled_reason":{"1":"invalid key"},"multi_key_disabled_time":{"1":1700000000},'
    '"multi_key_polling_index":2,"multi_key_mode":"polling"}'
)

READ_AND_WRITE = """
import json
from django.db import connection
from relay import state
from relay.channels import key_status
from relay.models import Channel
Channel.objects.filter(pk=1).update(key="k0\\nk1\\nk2")
info = state.channel_info(Channel.objects.get(pk=1))
plain = state.channel_info(Channel.objects.get(pk=2))
key_status.manage(1, "disable_key", 2)
with connection.cursor() as cursor:
    cursor.execute("SELECT channel_info FROM channels WHERE id = 1")
    raw = cursor.fetchone()[0]
raw = raw.decode() if isinstance(raw, bytes) else raw
print(json.dumps({"keys": info.keys, "live": info.live_keys, "mode": info.multi_key_mode, "key": info.key,
                  "plain_multi": plain.multi_key, "stored": raw if isinstance(raw, str) else json.dumps(raw)}))
"""


@pytest.mark.parametrize("backend", BACKENDS)
def test_new_api_channel_info_is_adopted_and_read_as_written(scratch_factory, tmp_path, backend):  # noqa: F811
    scratch = scratch_factory(backend, "new-api")
    execute(scratch, "ALTER TABLE channels ADD COLUMN channel_info json")
    value = {"sqlite": f"CAST('{NEW_API_INFO}' AS BLOB)", "postgres": f"'{NEW_API_INFO}'::json"}.get(
        backend, f"'{NEW_API_INFO}'"
    )
    execute(scratch, f"UPDATE channels SET channel_info = {value} WHERE id = 1")
    done = migrate(scratch, tmp_path)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "migration relay.0002_channel_info: marked applied (columns already present)" in done.stdout

    ran = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", READ_AND_WRITE],
        cwd=ROOT,
        env=_env(scratch, tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    got = json.loads(ran.stdout.strip().splitlines()[-1])
    assert (got["keys"], got["live"], got["mode"], got["key"]) == (
        ["k0", "k1", "k2"],
        [0, 2],
        "polling",
        "k0",
    )
    assert got["plain_multi"] is False  # a row New API left without channel_info
    stored = json.loads(got["stored"])
    assert stored["multi_key_status_list"] == {"1": 3, "2": 2}  # string keys, as New API's map[int]int
    assert stored["multi_key_disabled_reason"] == {"1": "invalid key", "2": "manual operation"}
    assert (stored["is_multi_key"], stored["multi_key_size"], stored["multi_key_mode"]) == (
        True,
        3,
        "polling",
    )
