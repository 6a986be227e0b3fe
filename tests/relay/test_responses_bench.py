"""The bench's /v1/responses phase, in miniature: bench/mock_upstream.py's Responses stream parses
with the openai SDK, and bench/responses_bench.py measures complete streams with usage both direct
and through the real gateway (a second of load, not a benchmark)."""

from __future__ import annotations

import subprocess
import sys
import types
from pathlib import Path

import openai
import pytest

from tests.conftest import free_port, live, make_channel, make_token, make_user, settle, wait_port

pytestmark = [live, pytest.mark.relay]
BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def mock():
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(BENCH / "mock_upstream.py"), "--port", str(port), "--workers", "1"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_port(port, proc=proc)
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


@pytest.fixture(scope="module")
def bench_modules():
    sys.path.insert(0, str(BENCH))
    try:
        import responses_bench
        import run_bench

        yield responses_bench, run_bench
    finally:
        sys.path.remove(str(BENCH))


class NoMeter:
    result: dict = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


def phase(bench_modules, base: str, key: str, client: str) -> dict:
    responses_bench, run_bench = bench_modules
    a = types.SimpleNamespace(
        model="gpt-4o-mini",
        stream_client=client,
        stream_concurrency=2,
        timeout=10,
        stream_warmup=0.2,
        stream_duration=0.5,
        chunks=5,
    )
    directive = "[mock:chunks=5,delay_ms=1,latency_ms=0]"
    return responses_bench.run(base, key, a, directive, NoMeter(), run_bench.summarize_streams)


def test_mock_responses_stream_parses_with_the_sdk(mock):
    client = openai.OpenAI(base_url=f"{mock}/v1", api_key="mock-key", max_retries=0)
    with client.responses.stream(model="gpt-4o-mini", input="hi [mock:chunks=3]") as stream:
        final = stream.get_final_response()
    assert final.output_text == "tok0 tok1 tok2 " and final.usage.output_tokens == 3


@pytest.mark.parametrize("client", ["raw", "httpx"])
def test_responses_phase_direct_and_through_the_gateway(gateway, mock, bench_modules, client):
    direct = phase(bench_modules, f"{mock}/v1", "mock-key", client)
    assert direct["streams"] > 0 and direct["complete"] == direct["streams"] and direct["ttfb_p50_ms"] > 0
    make_channel(mock, key="mock-key", type=1, models="gpt-4o-mini", name="bench-mock")
    user = make_user(f"bench-{client}", quota=100_000_000)
    token = make_token(user)
    ours = phase(bench_modules, gateway.v1, f"sk-{token.key}", client)
    assert ours["streams"] > 0 and ours["complete"] == ours["streams"], ours
    settle()
