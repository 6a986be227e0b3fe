"""Claude Code itself (`claude -p`, pinned from npm) pointed at the real gateway, against scripted
upstreams on 127.0.0.1: the model asks for the Bash tool, Claude Code runs it, sends the result
back, and prints the final answer. On a Claude channel (native) and on an OpenAI channel
(converted both ways); every request billed to the quota unit."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile

import pytest

from accounts.models import Option
from billing.models import Log
from newapi_site.options import update_option
from tests.clients.npm import install
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.agent_upstream import THOUGHT, ScriptedClaude, ScriptedOpenAI

pytestmark = [live, pytest.mark.relay]

CLAUDE_CODE = "2.1.332"
MODEL = "claude-3-7-sonnet-20250219"  # ratio 1.5, completion 5, cache 0.1, cache creation 1.25
CLAUDE_QUOTA = 365  # (100 + 60×0.1 + 30×1.25 + 20×5) × 1.5 = 365.25, per request
OPENAI_QUOTA = 309  # (100 + 60×0.1 + 20×5) × 1.5, per request
THINKING_MODEL = "claude-sonnet-4-5-20250929"  # Claude Code asks it for thinking with a ~32k budget
DEFAULT_MODEL = "claude-opus-5-5"  # this Claude Code's default: adaptive thinking, an effort, system turns
START = 10_000_000
PROMPT = "Run `echo tool-ran-fine` with the Bash tool and tell me what it printed."


@pytest.fixture(scope="module")
def claude_bin() -> str:
    return str(install("@anthropic-ai/claude-code", CLAUDE_CODE) / "claude")


@pytest.fixture(scope="module")
def claude_up() -> ScriptedClaude:
    return ScriptedClaude().start()


@pytest.fixture(scope="module")
def openai_up() -> ScriptedOpenAI:
    return ScriptedOpenAI().start()


def run_claude(
    claude_bin: str,
    gateway,
    key: str,
    model: str,
    auth_env: str = "ANTHROPIC_API_KEY",
    quiet: bool = True,
    ok: bool = True,
) -> dict:
    """`claude -p` in a private HOME and an empty working directory; its JSON result. `quiet=False`
    leaves Claude Code's non-essential traffic on (its HEAD /api/hello reachability probe)."""
    with tempfile.TemporaryDirectory() as home, tempfile.TemporaryDirectory() as work:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "ANTHROPIC_BASE_URL": gateway.url,
            auth_env: f"sk-{key}",
            "DISABLE_TELEMETRY": "1",
            "DISABLE_AUTOUPDATER": "1",
            "DISABLE_ERROR_REPORTING": "1",
        }
        if quiet:
            env["CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC"] = "1"
        proc = subprocess.run(
            [claude_bin, "-p", PROMPT, "--output-format", "json", "--model", model, "--allowedTools", "Bash"],
            env=env,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=180,
        )
    if ok:
        assert proc.returncode == 0, f"claude failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}"
    return json.loads(proc.stdout)


def charges(user) -> list[int]:
    settle()
    return sorted(Log.objects.filter(user_id=user.pk).values_list("quota", flat=True))


def sent_with(fake, header: str, value: str) -> list:
    return [r for r in fake.messages_requests() if r.headers.get(header) == value]


def test_claude_code_on_claude_channel(gateway, claude_bin, claude_up):
    channel = make_channel(claude_up.base_url, key="cc-native", type=14, models=MODEL)
    user = make_user("ccli1", quota=START)
    token = make_token(user, name="ccli1-key")
    out = run_claude(claude_bin, gateway, token.key, MODEL)
    assert out["is_error"] is False and out["result"] == "Tool said: tool-ran-fine"
    assert out["num_turns"] == 2
    first, second = sent_with(claude_up, "x-api-key", "cc-native")
    # passed as Claude Code sent it: betas, ?beta=true, system blocks with cache markers, metadata
    assert first.query == "beta=true" and "claude-code-20250219" in first.headers["anthropic-beta"]
    assert first.headers["anthropic-version"] == "2023-06-01"
    assert "Authorization" not in first.headers  # the gateway token stays at the gateway
    assert isinstance(first.body["system"], list) and any("cache_control" in b for b in first.body["system"])
    assert "user_id" in first.body["metadata"] and first.body["model"] == MODEL
    assert any(t["name"] == "Bash" for t in first.body["tools"])
    # the tool really ran: its output went back as the tool_result of the model's tool_use
    call = second.body["messages"][-2]["content"][-1]
    result = second.body["messages"][-1]["content"][0]
    assert call["type"] == "tool_use" and call["name"] == "Bash"
    assert result["type"] == "tool_result" and result["tool_use_id"] == call["id"]
    assert "tool-ran-fine" in json.dumps(result["content"])
    assert charges(user) == [CLAUDE_QUOTA, CLAUDE_QUOTA]
    assert set(Log.objects.filter(user_id=user.pk).values_list("channel_id", flat=True)) == {channel.pk}
    assert out["usage"]["cache_read_input_tokens"] == 120


def test_claude_code_on_openai_channel(gateway, claude_bin, openai_up):
    make_channel(openai_up.base_url, key="cc-openai", models=MODEL)
    user = make_user("ccli2", quota=START)
    token = make_token(user, name="ccli2-key")
    # ANTHROPIC_AUTH_TOKEN: Claude Code then signs in with Authorization: Bearer
    out = run_claude(claude_bin, gateway, token.key, MODEL, auth_env="ANTHROPIC_AUTH_TOKEN")
    assert out["is_error"] is False and out["result"] == "Tool said: tool-ran-fine"
    first, second = sent_with(openai_up, "Authorization", "Bearer cc-openai")
    assert first.path == "/v1/chat/completions" and first.body["stream"] is True
    assert first.body["messages"][0]["role"] == "system"
    assert "Bash" in [t["function"]["name"] for t in first.body["tools"]]
    assert all("cache_control" not in json.dumps(m) for m in first.body["messages"])  # OpenAI takes none
    call = second.body["messages"][-2]
    result = second.body["messages"][-1]
    assert call["role"] == "assistant" and call["tool_calls"][0]["function"]["name"] == "Bash"
    assert result["role"] == "tool" and result["tool_call_id"] == call["tool_calls"][0]["id"]
    assert result["content"].startswith("tool-ran-fine")
    assert charges(user) == [OPENAI_QUOTA, OPENAI_QUOTA]
    assert out["usage"]["cache_read_input_tokens"] == 120 and out["usage"]["output_tokens"] == 40


@pytest.fixture
def thinking_models_priced():
    models = (THINKING_MODEL, DEFAULT_MODEL)
    update_option("ModelRatio", json.dumps(dict.fromkeys(models, 1.5)))
    update_option("CompletionRatio", json.dumps(dict.fromkeys(models, 5)))
    update_option("CacheRatio", json.dumps(dict.fromkeys(models, 0.1)))
    propagated()
    yield
    Option.objects.filter(key__in=["ModelRatio", "CompletionRatio", "CacheRatio"]).delete()
    propagated()


@pytest.mark.parametrize(("model", "effort"), [(THINKING_MODEL, "high"), (DEFAULT_MODEL, "medium")])
def test_claude_code_thinking_on_openai_channel(
    gateway, claude_bin, openai_up, thinking_models_priced, model, effort
):
    key = f"cc-think-{effort}"
    make_channel(openai_up.base_url, key=key, models=model)
    user = make_user(f"ccli3{effort}", quota=START)
    token = make_token(user, name=f"ccli3{effort}-key")
    out = run_claude(claude_bin, gateway, token.key, model)
    assert out["is_error"] is False and out["result"] == "Tool said: tool-ran-fine"
    first, second = sent_with(openai_up, "Authorization", f"Bearer {key}")
    assert first.body["reasoning_effort"] == effort
    for dropped in ("thinking", "context_management", "output_config", "metadata"):
        assert dropped not in first.body
    roles = [m["role"] for m in first.body["messages"]]
    assert roles[0] == "system" and set(roles) <= {"system", "user"}
    # the thinking block Claude Code got back came round again as the tool-call turn's reasoning
    assert second.body["messages"][-2]["reasoning_content"] == THOUGHT
    assert charges(user) == [OPENAI_QUOTA, OPENAI_QUOTA]


def test_claude_code_with_its_probes_on(gateway, claude_bin, claude_up):
    """Without CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC Claude Code also probes HEAD /api/hello
    (answered 404, which it takes as reachable); the session still runs and bills the same."""
    make_channel(claude_up.base_url, key="cc-probes", type=14, models=MODEL)
    user = make_user("ccli4", quota=START)
    token = make_token(user, name="ccli4-key")
    out = run_claude(claude_bin, gateway, token.key, MODEL, quiet=False)
    assert out["is_error"] is False and out["result"] == "Tool said: tool-ran-fine"
    assert len(sent_with(claude_up, "x-api-key", "cc-probes")) == 2
    assert charges(user) == [CLAUDE_QUOTA, CLAUDE_QUOTA]


def test_claude_code_shows_the_gateways_refusal(gateway, claude_bin, claude_up):
    """A balance that cannot cover the hold: Claude Code gets the refusal in Claude's shape, shows
    its message, and nothing reaches the upstream or the bill."""
    make_channel(claude_up.base_url, key="cc-poor", type=14, models=MODEL)
    user = make_user("ccli5", quota=100)
    token = make_token(user, name="ccli5-key")
    out = run_claude(claude_bin, gateway, token.key, MODEL, ok=False)
    assert out["is_error"] is True and "pre-consumed quota failed" in json.dumps(out)
    assert sent_with(claude_up, "x-api-key", "cc-poor") == []
    assert charges(user) == []
    user.refresh_from_db()
    assert user.quota == 100
