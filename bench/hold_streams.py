"""Hold N streams open through the gateway at once and report each web worker's peak RSS.

Used by bench/run.py after the main harness (issue 7: ≤ 250 MB per process with 1,000 open
streams). Each stream asks the mock for 60 chunks 200 ms apart, so all of them overlap.
"""

from __future__ import annotations

import asyncio
import json
import subprocess


def rss_mb(pid: str) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0


def worker_pids(serve_pid: int) -> list[str]:
    out = subprocess.run(["pgrep", "-P", str(serve_pid), "-f", "relay.edge.web_worker"], capture_output=True, text=True)
    return out.stdout.split()


async def _one(port: int, key: str, body: bytes) -> bool:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
    )
    await writer.drain()
    seen = b""
    try:
        while True:
            data = await asyncio.wait_for(reader.read(65536), 60)
            if not data:
                return False
            seen = seen[-16:] + data
            if b"[DONE]" in seen:
                return True
    finally:
        writer.close()


async def _hold(port: int, key: str, pids: list[str], streams: int) -> dict:
    body = json.dumps(
        {"model": "gpt-4o-mini", "stream": True, "messages": [{"role": "user", "content": "[mock:chunks=60,delay_ms=200] hi"}]}
    ).encode()
    tasks = [asyncio.create_task(_one(port, key, body)) for _ in range(streams)]
    start = {p: rss_mb(p) for p in pids}
    peak = dict(start)
    while not all(t.done() for t in tasks):
        await asyncio.sleep(0.5)
        for p in pids:
            peak[p] = max(peak[p], rss_mb(p))
    results = await asyncio.gather(*tasks, return_exceptions=True)
    return {
        "streams": streams,
        "completed": sum(1 for r in results if r is True),
        "rss_mb_start": start,
        "rss_mb_peak": peak,
    }


def hold(port: int, key: str, serve_pid: int, streams: int = 1000) -> dict:
    return asyncio.run(_hold(port, key.removeprefix("sk-"), worker_pids(serve_pid), streams))
