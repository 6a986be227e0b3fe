"""The /v1/responses phase of run_bench.py: streamed Responses API requests (the events Codex CLI
reads) timed like the chat stream phase — TTFB (first body byte), TTFT (first output_text.delta)
and total — at --stream-concurrency, for the direct baseline and each gateway alike.
"""

import asyncio
import json
import time

from stream_client import RawPool, one_stream


def _setup(base, key, a, directive):
    import httpx

    url = base + "/responses"
    body = json.dumps({"model": a.model, "input": "Say hello. " + directive, "stream": True}).encode()
    headers = {
        "Authorization": "Bearer " + key,
        "Content-Type": "application/json",
        "Accept": "text/event-stream",
    }
    if a.stream_client == "raw":
        return RawPool(url), url, headers, body
    limits = httpx.Limits(
        max_connections=a.stream_concurrency, max_keepalive_connections=a.stream_concurrency
    )
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(a.timeout)), url, headers, body


async def responses_phase(base, key, a, directive, meter):
    """Staggered warm-up for --stream-warmup seconds, then --stream-duration seconds measured."""
    client, url, headers, body = _setup(base, key, a, directive)
    recs = []
    async with client:
        t_warm = time.perf_counter() + a.stream_warmup

        async def warm(i):
            await asyncio.sleep(i * a.stream_warmup / (2.0 * a.stream_concurrency))
            while time.perf_counter() < t_warm:
                await one_stream(client, url, headers, body)

        if a.stream_warmup > 0:
            await asyncio.wait_for(
                asyncio.gather(*[warm(i) for i in range(a.stream_concurrency)]),
                timeout=a.stream_warmup + a.timeout + 10,
            )
        deadline = time.perf_counter() + a.stream_duration

        async def worker():
            while time.perf_counter() < deadline:
                recs.append(await one_stream(client, url, headers, body))

        with meter:
            await asyncio.wait_for(
                asyncio.gather(*[worker() for _ in range(a.stream_concurrency)]),
                timeout=a.stream_duration + a.timeout + 10,
            )
    return recs


def print_table(results):
    """TTFB/total of the Responses streams per target, with the ratio to the direct baseline."""
    rows = [r for r in results if isinstance(r.get("responses"), dict) and "ttfb_p50_ms" in r["responses"]]
    if not rows:
        return
    direct = next((r["responses"] for r in rows if r["name"] == "direct"), None)
    print("\n/v1/responses streams (ms):")
    head = ("target", "TTFB p50", "TTFB p99", "TTFT p50", "total p50", "streams ok", "TTFB vs direct")
    print(f"{head[0]:<16} " + " ".join(f"{h:>14}" for h in head[1:]))
    for r in rows:
        s = r["responses"]
        vs = "-"
        if direct and r["name"] != "direct" and s.get("ttfb_p50_ms") and direct.get("ttfb_p50_ms"):
            vs = f"{s['ttfb_p50_ms'] / direct['ttfb_p50_ms']:.2f}x (+{s['ttfb_p50_ms'] - direct['ttfb_p50_ms']:.2f})"
        cells = [s.get("ttfb_p50_ms"), s.get("ttfb_p99_ms"), s.get("ttft_p50_ms"), s.get("total_p50_ms")]
        cells += [f"{s.get('complete')}/{s.get('streams')}", vs]
        print(f"{r['name']:<16} " + " ".join(f"{c!s:>14}" for c in cells))


def run(base, key, a, directive, meter, summarize):
    """The phase's figures for one target: summarize(records, chunks) plus the CPU meter's result."""
    try:
        import uvloop

        recs = uvloop.run(responses_phase(base, key, a, directive, meter))
    except ImportError:
        recs = asyncio.run(responses_phase(base, key, a, directive, meter))
    return {**summarize(recs, a.chunks), "cpu": meter.result}
