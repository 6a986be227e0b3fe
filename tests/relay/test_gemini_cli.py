"""Gemini CLI itself (`gemini -p`, pinned from npm) pointed at the real gateway with GOOGLE_GEMINI_BASE_URL
and a gateway token as GEMINI_API_KEY, against the fake Gemini upstream: a reply comes back, a tool
round trip (the CLI reads a file the fake model asks for) works, and the requests are billed."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from billing.models import Log
from tests.clients.npm import install
from tests.conftest import live, make_channel, make_token, make_user, settle
from tests.fakes.agent_upstream import ScriptedOpenAI, tool_names, tool_result_text
from tests.fakes.gemini_upstream import FakeGemini

pytestmark = [live, pytest.mark.relay]
GEMINI_CLI = "0.61.0"
MODEL = "gemini-2.0-flash"  # ratio 0.05, completion ratio 4: (8 + 4×4) × 0.05 = 1.2 → 1 per call
ROUND_MODEL = "gemini-1.5-flash"
GPT = "gpt-4o-mini"


@pytest.fixture(scope="module")
def gemini_bin() -> str:
    return str(install("@google/gemini-cli", GEMINI_CLI) / "gemini")


@pytest.fixture(scope="module")
def fake() -> FakeGemini:
    return FakeGemini().start()


def run_gemini(gemini_bin: str, gateway, key: str, prompt: str, workdir: str, model: str = MODEL) -> dict:
    """`gemini -p` with a private HOME, telemetry, usage statistics and update checks off; its JSON result."""
    with tempfile.TemporaryDirectory() as home:
        settings_dir = Path(home, ".gemini")
        settings_dir.mkdir()
        (settings_dir / "settings.json").write_text(
            json.dumps(
                {
                    # The API-key method: it honours GOOGLE_GEMINI_BASE_URL, and unlike the "gateway"
                    # method picked from that variable alone, this version's headless mode accepts it.
                    "security": {"auth": {"selectedType": "gemini-api-key"}},
                    "telemetry": {"enabled": False},
                    "privacy": {"usageStatisticsEnabled": False},
                    "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
                }
            )
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "GEMINI_API_KEY": key,
            "GOOGLE_GEMINI_BASE_URL": gateway.url,
            "GEMINI_TELEMETRY_ENABLED": "false",
            "NO_COLOR": "1",
            "NO_BROWSER": "1",
        }
        proc = subprocess.run(
            [gemini_bin, "-p", prompt, "-m", model, "--output-format", "json", "--skip-trust"],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
            stdin=subprocess.DEVNULL,
        )
    assert proc.returncode == 0, f"gemini exited {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}"
    return json.loads(proc.stdout[proc.stdout.index("{") :])


def test_gemini_cli_reply_and_tool_round_trip(gateway, fake, gemini_bin, tmp_path):
    make_channel(fake.base_url, key="gk", type=24, models=MODEL)
    user = make_user("gcli", quota=1_000_000)
    token = make_token(user).key
    before = len(fake.requests)
    out = run_gemini(gemini_bin, gateway, token, "Say hello", str(tmp_path))
    assert "Hello from Gemini!" in out["response"]
    sent = [r for r in fake.requests[before:] if r.key == "gk"]
    assert sent and all(token not in r.query for r in sent)
    assert any(r.path == f"/v1beta/models/{MODEL}:streamGenerateContent" for r in sent)
    settle()
    rows = list(Log.objects.filter(user_id=user.pk, type=2).values_list("quota", "prompt_tokens", "completion_tokens"))
    assert rows and all(row == (1, 8, 4) for row in rows)

    # The fake model asks for read_file on a file in the working directory; the CLI runs it and
    # sends the file's text back as a functionResponse; the model's answer quotes it.
    (tmp_path / "notes.txt").write_text("the secret word is pineapple")
    fake.round_tool, fake.round_args = "read_file", {"file_path": str(tmp_path / "notes.txt")}
    make_channel(fake.base_url, key="round", type=24, models=ROUND_MODEL, name="gcli-round")
    round_user = make_user("gcli2", quota=1_000_000)
    before = len(fake.requests)
    out = run_gemini(gemini_bin, gateway, make_token(round_user).key, "What is in notes.txt?", str(tmp_path), ROUND_MODEL)
    assert "pineapple" in out["response"]
    asked = [r for r in fake.requests[before:] if r.key == "round"]
    answers = [
        p["functionResponse"]
        for r in asked
        for p in (r.body.get("contents") or [{}])[-1].get("parts") or []
        if "functionResponse" in p
    ]
    assert answers and answers[0]["name"] == "read_file"
    settle()
    assert Log.objects.filter(user_id=round_user.pk, type=2).count() >= 2


def test_gemini_cli_on_an_openai_channel(gateway, gemini_bin, tmp_path):
    """The same round trip on an OpenAI channel: the CLI's Gemini requests become chat completions
    (its function declarations tools, its functionResponse a tool message) and the streamed answers,
    tool call included, come back in Gemini's shape. Each request: prompt 160 (60 cached at 0.5),
    completion 20: (100 + 30 + 20×4) × 0.075 = 15.75 → 16."""
    (tmp_path / "notes.txt").write_text("the secret word is mango")
    agent = ScriptedOpenAI(tool="read_file", tool_input={"file_path": str(tmp_path / "notes.txt")}).start()
    make_channel(agent.base_url, key="agent-openai", type=1, models=GPT, name="gcli-openai")
    user = make_user("gcli3", quota=1_000_000)
    out = run_gemini(gemini_bin, gateway, make_token(user).key, "What is in notes.txt?", str(tmp_path), GPT)
    assert "mango" in out["response"]
    chats = [r for r in agent.messages_requests() if r.path == "/v1/chat/completions"]
    with_tool = [r for r in chats if "read_file" in tool_names(r.body)]
    assert with_tool and all(r.body["stream"] and r.body["stream_options"] == {"include_usage": True} for r in with_tool)
    answered = [r for r in chats if tool_result_text(r.body) is not None]
    assert answered and "mango" in tool_result_text(answered[0].body)
    tool_msgs = [m for m in answered[0].body["messages"] if m["role"] == "tool"]
    calls = [c for m in answered[0].body["messages"] if m["role"] == "assistant" for c in m.get("tool_calls") or []]
    assert calls[-1]["function"]["name"] == "read_file" and tool_msgs[-1]["tool_call_id"] == calls[-1]["id"]
    settle()
    rows = list(Log.objects.filter(user_id=user.pk, type=2).values_list("quota", "prompt_tokens", "completion_tokens"))
    assert len(rows) == len(chats) and all(row == (16, 160, 20) for row in rows)
