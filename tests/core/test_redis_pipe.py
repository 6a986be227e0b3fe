"""newapi_site.redis_pipe: the pipelined connection behind the ledger's per-request scripts."""

from __future__ import annotations

import asyncio

import pytest
import redis
from redis.exceptions import ConnectionError, NoScriptError, ResponseError

from newapi_site.redis_pipe import PipelinedRedis

URL = "redis://127.0.0.1:6379/9"


def run(coro):
    return asyncio.run(coro)


def test_commands_issued_together_share_one_write_and_get_their_own_replies(monkeypatch):
    writes = []
    flush = PipelinedRedis._flush

    def counted(self):
        if self.out:
            writes.append(len(self.out))
        flush(self)

    monkeypatch.setattr(PipelinedRedis, "_flush", counted)

    async def main():
        client = PipelinedRedis(URL)
        await client.execute("PING")
        writes.clear()
        return await asyncio.gather(*(client.execute("ECHO", f"n{i}") for i in range(50)))

    assert run(main()) == [f"n{i}".encode() for i in range(50)]
    assert writes == [50]


def test_errors_go_to_their_own_command_and_the_connection_stays_usable():
    async def main():
        client = PipelinedRedis(URL)
        results = await asyncio.gather(
            client.execute("EVALSHA", "0" * 40, 0),
            client.execute("INCRBY", "pipe-test-not-a-number", "x"),
            client.execute("ECHO", "still fine"),
            return_exceptions=True,
        )
        return results, await client.execute("PING")

    (noscript, wrong, echo), pong = run(main())
    assert isinstance(noscript, NoScriptError)
    assert isinstance(wrong, ResponseError) and not isinstance(wrong, NoScriptError)
    assert echo == b"still fine" and pong == b"PONG"


def test_the_url_database_is_selected():
    async def main():
        client = PipelinedRedis(URL)
        await client.execute("SET", "pipe-test-db", "here")

    run(main())
    sync = redis.Redis.from_url(URL)
    try:
        assert sync.get("pipe-test-db") == b"here"
    finally:
        sync.delete("pipe-test-db")


def test_a_dropped_connection_fails_what_was_waiting_and_the_next_command_reconnects():
    async def main():
        client = PipelinedRedis(URL)
        await client.execute("CLIENT", "SETNAME", "pipe-test-victim")
        blocked = asyncio.ensure_future(client.execute("BLPOP", "pipe-test-never", 5))
        await asyncio.sleep(0.1)
        killer = redis.Redis.from_url(URL)
        victim = [c for c in killer.client_list() if c.get("name") == "pipe-test-victim"]
        killer.client_kill_filter(_id=victim[0]["id"])
        with pytest.raises(ConnectionError):
            await blocked
        return await client.execute("PING")

    assert run(main()) == b"PONG"
