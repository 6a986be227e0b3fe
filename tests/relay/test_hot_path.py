"""The warm relay hot path does no database work and one ledger round trip per request (Redis, or
the embedded ledger's owner).

The relay ASGI app runs in-process against the fake upstream. The background writer and the bus
listener are kept off (RelayRouter._started) so that only the request path is counted. Queries
are counted on every DB connection (sync_to_async threads open their own) with an execute
wrapper; Redis round trips by wrapping the asyncio client's command and pipeline calls.
"""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack

import httpx
import pytest
import redis.asyncio.client as aredis_client
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.signals import connection_created

from billing import local_ledger
from newapi_site import redis as r
from newapi_site import redis_pipe
from relay.upstream import http as relay_http
from tests.conftest import live, make_channel, make_token, make_user

pytestmark = [live, pytest.mark.relay]

WARM_REQUESTS = 20


class QueryLog:
    def __init__(self) -> None:
        self.sql: list[str] = []

    def __call__(self, execute, sql, params, many, context):
        # The embedded ledger's owner may live in this process (its threads stand in for the
        # serve parent, which loads balances and writes the journal out): not the request path.
        if not threading.current_thread().name.startswith("ledger-"):
            self.sql.append(sql)
        return execute(sql, params, many, context)

    def attach(self, connection, **kwargs) -> None:
        if self not in connection.execute_wrappers:
            connection.execute_wrappers.append(self)


class RedisCalls:
    """Round trips: one per command outside a pipeline, one per pipeline execute."""

    def __init__(self) -> None:
        self.commands: list[str] = []
        self.writes = 0

    def install(self, stack: ExitStack, monkeypatch: pytest.MonkeyPatch) -> None:
        command = aredis_client.Redis.execute_command
        pipeline = aredis_client.Pipeline.execute
        calls = self

        async def execute_command(client, *args, **options):
            if not isinstance(client, aredis_client.Pipeline):
                calls.commands.append(str(args[0]).upper())
            return await command(client, *args, **options)

        async def execute(pipe, *args, **kwargs):
            calls.commands.append("PIPELINE")
            return await pipeline(pipe, *args, **kwargs)

        monkeypatch.setattr(aredis_client.Redis, "execute_command", execute_command)
        monkeypatch.setattr(aredis_client.Pipeline, "execute", execute)

        # The ledger's scripts go through the pipelined connection: a command per call, and a
        # round trip per write (at one request at a time, one per command).
        piped = redis_pipe.PipelinedRedis.execute
        flush = redis_pipe.PipelinedRedis._flush

        async def piped_execute(client, *args):
            calls.commands.append(str(args[0]).upper())
            return await piped(client, *args)

        def counted_flush(client):
            if client.out:
                calls.writes += 1
            return flush(client)

        monkeypatch.setattr(redis_pipe.PipelinedRedis, "execute", piped_execute)
        monkeypatch.setattr(redis_pipe.PipelinedRedis, "_flush", counted_flush)

        # The embedded ledger's client: the same counts, by request kind (C commit, R reserve).
        local_call = local_ledger._Client.call
        local_flush = local_ledger._Client._flush

        async def counted_call(client, line):
            calls.commands.append("LEDGER-" + line[:1].decode())
            return await local_call(client, line)

        def counted_local_flush(client):
            if client.out:
                calls.writes += 1
            return local_flush(client)

        monkeypatch.setattr(local_ledger._Client, "call", counted_call)
        monkeypatch.setattr(local_ledger._Client, "_flush", counted_local_flush)


async def _run(app, key: str, n: int, on_warm) -> list[int]:
    transport = httpx.ASGITransport(app=app)
    statuses = []
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
        headers = {"Authorization": f"Bearer sk-{key}"}
        statuses.append((await client.post("/v1/chat/completions", json=body, headers=headers)).status_code)
        on_warm()
        for _ in range(n):
            statuses.append((await client.post("/v1/chat/completions", json=body, headers=headers)).status_code)
    await _close_loop_resources()
    return statuses


async def _close_loop_resources() -> None:
    """This loop ends with the test: close its pooled clients and the worker threads' DB connections."""
    loop = asyncio.get_running_loop()
    upstream = relay_http._clients.pop(loop, None)
    if upstream is not None:
        await upstream.aclose()
    transport = relay_http._transports.pop(loop, None)
    if transport is not None:
        await transport.aclose()
    redis_client = r._async_clients.pop(loop, None)
    if redis_client is not None:
        await redis_client.aclose()
    redis_pipe.close_for_loop(loop)
    local_ledger.close_for_loop(loop)
    await sync_to_async(connections.close_all)()


def test_warm_requests_touch_no_database_and_two_redis_round_trips(fake_upstream, monkeypatch):
    from newapi_site.asgi import application

    make_channel(fake_upstream.base_url, key="ok-key")
    user = make_user("hotpath", quota=10_000_000)
    # A limited token exercises the token balance too.
    token = make_token(user, unlimited_quota=False, remain_quota=5_000_000, name="hot")
    router = application.application_mapping["http"]
    monkeypatch.setattr(router, "_started", True)  # no background writer/bus listener in this process

    queries = QueryLog()
    redis_calls = RedisCalls()
    with ExitStack() as stack:
        connection_created.connect(queries.attach)
        stack.callback(connection_created.disconnect, queries.attach)
        for conn in connections.all(initialized_only=True):
            queries.attach(conn)
        redis_calls.install(stack, monkeypatch)

        cold: list[str] = []

        def on_warm() -> None:
            cold.extend(queries.sql)
            queries.sql.clear()
            redis_calls.commands.clear()
            redis_calls.writes = 0

        statuses = asyncio.run(_run(application, token.key, WARM_REQUESTS, on_warm))
        for conn in connections.all(initialized_only=True):
            if queries in conn.execute_wrappers:
                conn.execute_wrappers.remove(queries)

    assert statuses == [200] * (WARM_REQUESTS + 1)
    assert any("SELECT" in q.upper() for q in cold), "the counter saw no query even on the cold request"
    if r.redis_enabled():
        # Redis ledger: one commit per request (it also queues the settlement). The reserve is
        # skipped under the trusted rule while the balance seen < 2 s ago covers 100× the estimate.
        assert queries.sql == []
        assert redis_calls.commands == ["EVALSHA"] * WARM_REQUESTS
        assert redis_calls.writes == WARM_REQUESTS
    else:
        # Embedded ledger: the same single commit per request, to the owner process instead.
        assert queries.sql == [], queries.sql[:5]
        assert redis_calls.commands == ["LEDGER-C"] * WARM_REQUESTS
        assert redis_calls.writes == WARM_REQUESTS
