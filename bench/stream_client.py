"""The stream-phase clients of run_bench.py: httpx (as SDKs do) and a raw asyncio socket client.

Both send the same request, count the same things (content deltas, usage, [DONE]) and time the
first body byte (TTFB), the first content delta (TTFT) and the end of the stream.
"""
import asyncio
import json
import time
import urllib.parse


class _SSECount:
    """What a stream delivered: content deltas, usage, [DONE]; and when the first delta came."""

    def __init__(self, rec):
        self.rec, self.buf, self.t_tok = rec, b"", None

    def feed(self, data):
        self.buf += data
        while True:
            i = self.buf.find(b"\n")
            if i < 0:
                return
            line, self.buf = self.buf[:i].strip(), self.buf[i + 1:]
            if not line.startswith(b"data:"):
                continue
            payload = line[5:].strip()
            if payload == b"[DONE]":
                self.rec["done"] = True
                continue
            obj = json.loads(payload)
            kind = obj.get("type")
            if kind == "response.output_text.delta":  # the Responses API's events
                self.rec["content_chunks"] += 1
                self.t_tok = self.t_tok or time.perf_counter()
            elif kind == "response.completed":
                self.rec["usage"], self.rec["done"] = obj["response"].get("usage"), True
            for ch in obj.get("choices") or ():
                if (ch.get("delta") or {}).get("content"):
                    self.rec["content_chunks"] += 1
                    if self.t_tok is None:
                        self.t_tok = time.perf_counter()
            if obj.get("usage"):
                self.rec["usage"] = obj["usage"]


def _finish_rec(rec, t0, t_first, t_tok, t_end):
    rec["ttfb_ms"] = (t_first - t0) * 1e3 if t_first else None
    rec["ttft_ms"] = (t_tok - t0) * 1e3 if t_tok else None
    rec["total_ms"] = (t_end - t0) * 1e3
    return rec


async def one_stream(client, url, headers, body):
    if isinstance(client, RawPool):
        return await one_stream_raw(client, url, headers, body)
    t0 = time.perf_counter()
    rec = {"error": None, "content_chunks": 0, "usage": None, "done": False}
    sse = _SSECount(rec)
    try:
        async with client.stream("POST", url, content=body, headers=headers) as r:
            if r.status_code != 200:
                await r.aread()
                rec["error"] = "HTTP %d" % r.status_code
                return rec
            t_first = None
            async for data in r.aiter_bytes():
                if t_first is None:
                    t_first = time.perf_counter()
                sse.feed(data)
            t_end = time.perf_counter()
    except Exception as e:  # noqa: BLE001
        rec["error"] = type(e).__name__ + (": " + str(e)[:120] if str(e) else "")
        return rec
    return _finish_rec(rec, t0, t_first, sse.t_tok, t_end)


class RawPool:
    """Keep-alive HTTP/1.1 connections for the raw stream client (--stream-client raw): plain
    asyncio streams and a hand-rolled chunked decoder, so that the client's own cost (httpx needs
    3-5 ms to a first byte even against the fake upstream on this box) does not swamp the
    difference being measured. Same requests, same checks as the httpx client."""

    def __init__(self, url):
        u = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path
        self.idle = []

    async def get(self):
        if self.idle:
            return self.idle.pop()
        return await asyncio.open_connection(self.host, self.port)

    def put(self, conn):
        self.idle.append(conn)

    async def aclose(self):
        for _, w in self.idle:
            w.close()
        self.idle = []

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.aclose()


async def one_stream_raw(pool, url, headers, body):
    t0 = time.perf_counter()
    rec = {"error": None, "content_chunks": 0, "usage": None, "done": False}
    sse = _SSECount(rec)
    try:
        reader, writer = await pool.get()
        head = "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Length: %d\r\n" % (pool.path, pool.host, pool.port, len(body))
        head += "".join("%s: %s\r\n" % kv for kv in headers.items()) + "\r\n"
        writer.write(head.encode() + body)
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        hdrs = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:] if l)}
        t_first = None
        if "chunked" in hdrs.get("transfer-encoding", "").lower():
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    await reader.readuntil(b"\r\n")
                    break
                data = await reader.readexactly(size + 2)
                if t_first is None:
                    t_first = time.perf_counter()
                sse.feed(data[:-2])
        elif "content-length" in hdrs:
            data = await reader.readexactly(int(hdrs["content-length"]))
            t_first = time.perf_counter()
            sse.feed(data)
        else:
            while data := await reader.read(65536):
                if t_first is None:
                    t_first = time.perf_counter()
                sse.feed(data)
            hdrs["connection"] = "close"
        t_end = time.perf_counter()
        if hdrs.get("connection", "").lower() == "close":
            writer.close()
        else:
            pool.put((reader, writer))
        if status != 200:
            rec["error"] = "HTTP %d" % status
            return rec
    except Exception as e:  # noqa: BLE001
        rec["error"] = type(e).__name__ + (": " + str(e)[:120] if str(e) else "")
        return rec
    return _finish_rec(rec, t0, t_first, sse.t_tok, t_end)
