"""Codex CLI itself (`codex exec`, pinned from npm) pointed at the real gateway through a custom model
provider (wire_api = "responses", the gateway token from an environment variable), against fake
upstreams: a reply comes back on an OpenAI channel (native Responses) and on an OpenAI-compatible
chat channel (converted), a shell tool round trip works, and every request is billed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from billing.models import Log
from tests.clients.npm import install
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.responses_upstream import FakeResponsesAPI

pytestmark = [live, pytest.mark.relay]
CODEX = "0.171.0"
MODEL = "gpt-4o"  # ratio 1.25, completion ratio 4
NATIVE_QUOTA = 45  # (12 + 6×4) × 1.25 per request
CHAT_QUOTA = 60  # (20 + 7×4) × 1.25 per request


@pytest.fixture(scope="module")
def codex_bin() -> str:
    return str(install("@openai/codex", CODEX) / "codex")


@pytest.fixture(scope="module")
def fake() -> FakeResponsesAPI:
    return FakeResponsesAPI().start()


def run_codex(codex_bin: str, gateway, key: str, prompt: str, workdir: Path) -> str:
    """`codex exec` with a private HOME and CODEX_HOME, no update check, no analytics; its final message."""
    with tempfile.TemporaryDirectory() as home:
        codex_home = Path(home, ".codex")
        codex_home.mkdir()
        (codex_home / "config.toml").write_text(
            f'''model = "{MODEL}"
model_provider = "gateway"
check_for_update_on_startup = false

[model_providers.gateway]
name = "gateway"
base_url = "{gateway.v1}"
env_key = "GATEWAY_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false

[otel]
exporter = "none"
'''
        )
        last = Path(home, "last.txt")
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "CODEX_HOME": str(codex_home),
            "GATEWAY_API_KEY": key,
            "NO_COLOR": "1",
            "RUST_LOG": "error",
        }
        proc = subprocess.run(
            [
                codex_bin,
                "exec",
                "--skip-git-repo-check",
                "--dangerously-bypass-approvals-and-sandbox",
                "--output-last-message",
                str(last),
                prompt,
            ],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
        assert proc.returncode == 0, (
            f"codex exited {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
        )
        return last.read_text() if last.exists() else proc.stdout


def quota_of(user) -> int:
    settle()
    user.refresh_from_db()
    return user.quota


def test_codex_native_reply(gateway, fake, codex_bin, tmp_path):
    make_channel(fake.base_url, key="plain", type=1, models=MODEL, name="codex-openai")
    user = make_user("codex1", quota=1_000_000)
    token = make_token(user).key
    before = len(fake.seen("/v1/responses"))
    out = run_codex(codex_bin, gateway, f"sk-{token}", "Say hello", tmp_path)
    assert "Hello from Responses!" in out
    sent = fake.seen("/v1/responses")[before:]
    assert len(sent) == 1 and sent[0].key == "plain" and sent[0].body["stream"] is True
    assert 1_000_000 - quota_of(user) == NATIVE_QUOTA
    assert Log.objects.filter(user_id=user.pk).count() == 1


def test_codex_shell_round_trip_on_a_chat_channel(gateway, fake, codex_bin, tmp_path):
    make_channel(fake.base_url, key="tools", type=7, models=MODEL, name="codex-chat")
    user = make_user("codex2", quota=1_000_000)
    token = make_token(user).key
    before = len(fake.seen("/chat/completions"))
    out = run_codex(codex_bin, gateway, f"sk-{token}", "Run echo for me", tmp_path)
    sent = fake.seen("/chat/completions")[before:]
    assert len(sent) == 2, [s.body for s in sent]
    first, second = sent[0].body, sent[1].body
    assert first["stream"] is True and any(t["type"] == "function" for t in first["tools"])
    tool_msg = next(m for m in second["messages"] if m["role"] == "tool")
    assert "codex-tool-ok" in tool_msg["content"]  # the command ran and its output went back
    assert "Tool said:" in out and "codex-tool-ok" in out
    assert 1_000_000 - quota_of(user) == 2 * CHAT_QUOTA
    assert Log.objects.filter(user_id=user.pk).count() == 2
