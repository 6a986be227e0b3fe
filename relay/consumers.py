"""The OpenAI Realtime relay: GET /v1/realtime?model=… as a websocket (tasks-special.md §4, relay.md §13.6).

Auth by `Authorization: Bearer` or the `openai-insecure-api-key.<key>` subprotocol; frames are relayed
both ways to the channel's wss endpoint (OpenAI-compatible, or Azure's /openai/realtime). Each upstream
`response.done` usage is charged as it arrives with the audio formula (relay.md §9.4); when the balance
runs out the client gets an error event and the socket closes. One consume log row is written at the end.
Only upstream-reported usage is billed (no local audio estimates yet).
"""

from __future__ import annotations

import asyncio
import logging
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
import websockets
from asgiref.sync import sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from billing import ledger
from billing.ledger import Account, QuotaError
from billing.pricing import PriceNotSet, price_for, pre_consume_estimate
from billing.settlement import Settlement

from . import auth, state
from .errors import RelayError
from .wire import new_request_id

log = logging.getLogger("newapi.relay")


def audio_ratio(model: str) -> float:
    if model.endswith("gpt-4o-realtime-preview-2024-12-17"):
        return 8
    return 10 if "mini" in model else 20


def realtime_quota(usage: dict[str, Any], model_ratio: float, group_ratio: float, completion_ratio: float, a_ratio: float) -> int:
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    d = lambda v: Decimal(str(v or 0))  # noqa: E731
    tokens = d(inp.get("text_tokens")) + d(out.get("text_tokens")) * d(completion_ratio) + d(inp.get("audio_tokens")) * d(a_ratio) + d(out.get("audio_tokens")) * d(a_ratio) * 2
    ratio = d(model_ratio) * d(group_ratio)
    quota = int((tokens * ratio).to_integral_value(ROUND_HALF_UP))
    return max(quota, 1) if ratio != 0 else quota


class RealtimeConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        self.request_id = new_request_id()
        self.started = time.time()
        self.upstream = None
        self.pump: asyncio.Task | None = None
        self.charge_lock = asyncio.Lock()
        self.totals = {"input": 0, "output": 0, "quota": 0, "text_in": 0, "text_out": 0, "audio_in": 0, "audio_out": 0}
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]}
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.model = (query.get("model") or [""])[0]
        try:
            await state.ensure_options_loaded()
            self.caller = await auth.authenticate(headers, self.scope["path"])
            auth.check_model_allowed(self.caller.token, self.model)
            self.price = price_for(self.model, self.caller.group)
            index = await state.channels.index()
            self.channel = index.pick(self.caller.group, self.model, set())
            if self.channel is None:
                raise RelayError(f"no available channel for model {self.model}", status=503)
            self.acct = Account(self.caller.user.id, self.caller.token.id, not self.caller.token.unlimited_quota)
            if self.price.use_price:  # fixed-price models pay once, at connect
                hold = await ledger.reserve(self.acct, pre_consume_estimate(self.price, 0, 0))
                await self._settle(hold, hold.amount)
            self.upstream = await self._dial(headers, query)
        except (RelayError, PriceNotSet, QuotaError, OSError, websockets.exceptions.WebSocketException) as exc:
            log.info("realtime connect refused: %s", exc)
            await self.close()
            return
        offered = self.scope.get("subprotocols") or []
        await self.accept(subprotocol="realtime" if "realtime" in offered else None)
        self.pump = asyncio.ensure_future(self._pump_upstream())

    async def _dial(self, headers: dict[str, str], query: dict[str, list[str]]):
        c = self.channel
        base = c.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        extra: dict[str, str] = {}
        subprotocols = None
        upstream_model = c.model_mapping.get(self.model, self.model)
        if c.type == 3:
            version = (query.get("api-version") or [""])[0] or c.other or settings.AZURE_DEFAULT_API_VERSION
            url = f"{base}/openai/realtime?" + urlencode({"deployment": upstream_model.replace(".", ""), "api-version": version})
            extra["api-key"] = c.key
        else:
            url = base + self.scope["path"] + "?" + urlencode({"model": upstream_model})
            if "sec-websocket-protocol" in headers:
                subprotocols = ["realtime", f"openai-insecure-api-key.{c.key}", "openai-beta.realtime-v1"]
            else:
                extra.update({"Authorization": f"Bearer {c.key}", "openai-beta": "realtime=v1"})
            if c.type == 1 and c.organization:
                extra["OpenAI-Organization"] = c.organization
        return await websockets.connect(url, additional_headers=extra, subprotocols=subprotocols, open_timeout=10)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.upstream is None:
            return
        try:
            await self.upstream.send(text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace"))
        except websockets.exceptions.ConnectionClosed:
            await self.close()

    async def _pump_upstream(self) -> None:
        try:
            async for message in self.upstream:
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await self.send(text_data=text)
                try:
                    event = orjson.loads(text)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict) and event.get("type") == "response.done":
                    usage = (event.get("response") or {}).get("usage")
                    if isinstance(usage, dict) and not await self._charge_usage(usage):
                        return
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            await self.close()

    async def _charge_usage(self, usage: dict[str, Any]) -> bool:
        t = self.totals
        inp, out = usage.get("input_token_details") or {}, usage.get("output_token_details") or {}
        t["input"] += int(usage.get("input_tokens") or 0)
        t["output"] += int(usage.get("output_tokens") or 0)
        t["text_in"] += int(inp.get("text_tokens") or 0)
        t["audio_in"] += int(inp.get("audio_tokens") or 0)
        t["text_out"] += int(out.get("text_tokens") or 0)
        t["audio_out"] += int(out.get("audio_tokens") or 0)
        if self.price.use_price:
            return True
        p = self.price
        quota = realtime_quota(usage, p.model_ratio, p.group_ratio, p.completion_ratio, audio_ratio(self.model))
        async with self.charge_lock:
            try:
                hold = await ledger.reserve(self.acct, quota)
            except QuotaError as exc:
                await self.send(text_data=orjson.dumps({
                    "type": "error", "event_id": f"evt_{self.request_id}",
                    "error": {"message": f"quota is not enough ({exc.kind}) (request id: {self.request_id})",
                              "type": "new_api_error", "param": "", "code": "insufficient_user_quota"},
                }).decode())
                return False
            await self._settle(hold, quota)
        return True

    async def _settle(self, hold, quota: int) -> None:
        self.totals["quota"] += quota
        await hold.settle(Settlement(
            user_id=self.caller.user.id, token_id=self.caller.token.id, channel_id=self.channel.id,
            user_delta=0, token_delta=0, quota=quota, counted=False, username=self.caller.user.username,
            model_name=self.model,
        ))

    async def disconnect(self, code: int) -> None:
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()
        if self.upstream is not None:
            await self.upstream.close()
            self.upstream = None
            await self._write_log()

    async def _write_log(self) -> None:
        t, p = self.totals, self.price
        now = time.time()
        other = {
            "model_ratio": p.model_ratio, "group_ratio": p.group_ratio, "completion_ratio": p.completion_ratio,
            "model_price": p.model_price, "ws": True, "audio_input": t["audio_in"], "audio_output": t["audio_out"],
            "text_input": t["text_in"], "text_output": t["text_out"], "audio_ratio": audio_ratio(self.model),
            "audio_completion_ratio": 2, "admin_info": {"use_channel": [self.channel.id]},
        }
        log_row = {
            "user_id": self.caller.user.id, "username": self.caller.user.username, "created_at": int(now),
            "content": "", "prompt_tokens": t["input"], "completion_tokens": t["output"], "model_name": self.model,
            "token_name": self.caller.token.name, "token_id": self.caller.token.id, "quota": t["quota"],
            "use_time": int(now - self.started), "is_stream": True, "channel_id": self.channel.id,
            "group": self.caller.group, "other": orjson.dumps(other).decode(),
        }
        # Balances were charged per response; this settlement only counts the request and writes the log.
        from billing.settlement import apply_settlements

        s = Settlement(
            user_id=self.caller.user.id, token_id=0, channel_id=self.channel.id, user_delta=0, token_delta=0,
            quota=t["quota"], counted=t["quota"] > 0, log=log_row, username=self.caller.user.username,
            model_name=self.model, tokens_used=t["input"] + t["output"],
        )
        await sync_to_async(apply_settlements)([s])
