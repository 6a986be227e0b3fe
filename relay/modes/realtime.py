"""The OpenAI Realtime relay: GET /v1/realtime?model=… as a websocket.

Auth by `Authorization: Bearer` or the `openai-insecure-api-key.<key>` subprotocol; frames are relayed
both ways to the channel's wss endpoint (OpenAI's, or Azure's /openai/realtime; channels of other
types are passed over).

Billing, exactly once per session:
- at connect the pre-consume estimate is reserved (the fixed price for priced models), which also
  refuses an empty balance;
- each upstream `response.done` with usage is reserved at once with the audio formula (billing.pricing),
  so the balance is checked while the session runs; when it runs out the client gets an error event
  and the socket closes, but what already arrived is still charged;
- usage the upstream does not report is estimated locally (client audio appends, input text items,
  instructions; upstream audio / transcript / text / tool-argument deltas) and charged on the next
  usage-less `response.done` or at the end;
- at the end one Settlement (billing.consume) goes through the ledger (`Hold.settle`): the final
  charge is everything that arrived, the difference to what was reserved (the connect estimate) is
  returned, and the consume log row is written by the batched billing writer. Whichever side
  drops, the session ends through the same path.

Errors before the session exists (auth, model, quota, no channel, upstream dial) cannot be plain HTTP
answers here: Daphne only rejects a handshake with a bare 403. So the socket is accepted, the error is
sent as a realtime `error` event carrying the HTTP status, and the socket is closed with code
4000 + status (4401, 4403, 4503, 4500).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
import websockets
import websockets.exceptions  # a submodule: the lazy package does not expose it by itself
from channels.generic.websocket import AsyncWebsocketConsumer

from billing import ledger, writer
from billing.consume import realtime_bill
from billing.ledger import Account, Hold, QuotaError
from billing.pricing import PriceNotSet, Tally, pre_consume_estimate, price_for, realtime_quota
from newapi_site import bus, client_ip
from relay import auth, rate_limit, state
from relay.adaptors import adaptor_for
from relay.adaptors.base import serves_realtime
from relay.adaptors.registry import REALTIME_TYPES
from relay.channels import key_choice, limits
from relay.channels.choice import Route
from relay.edge.wire import new_request_id
from relay.errors import LocalError, RelayError, UpstreamError
from relay.metering.charge import quota_error
from relay.metering.tokenizer import count_text
from relay.upstream import proxies
from relay.upstream.safe_paths import check_header_values

log = logging.getLogger("newapi.relay")
# Closing the upstream socket waits at most this long for its close handshake: a hung upstream
# must not keep a finished session (and its worker's resources) around.
UPSTREAM_CLOSE_SECONDS = 2.0


def audio_seconds(b64: str, fmt: str) -> float:
    """pcm16: 24 kHz, 2 bytes a sample; g711 and anything else: 8 kHz, 1 byte a sample."""
    try:
        size = len(base64.b64decode(b64 or "", validate=False))
    except (binascii.Error, ValueError):
        return 0.0
    return size / 2 / 24000 if fmt == "pcm16" else size / 8000


def audio_tokens(b64: str, fmt: str, output: bool) -> int:
    seconds = audio_seconds(b64, fmt)
    return int(seconds / 60 * 200 / 0.24) if output else int(seconds / 60 * 100 / 0.06)


def error_event(request_id: str, err: RelayError) -> str:
    message = err.message
    if err.status == 429:
        message = "当前分组上游负载已饱和，请稍后再试"
    return orjson.dumps(
        {
            "type": "error",
            "event_id": f"evt_{request_id}",
            "error": {
                "message": f"{message} (request id: {request_id})",
                "type": err.type,
                "param": err.param,
                "code": err.code,
                "status": err.status,
            },
        }
    ).decode()


class RealtimeConsumer(AsyncWebsocketConsumer):
    async def connect(self) -> None:
        # A process may serve websockets before any HTTP relay request: start what that would start.
        bus.ensure_listener()
        writer.start_background_writer()
        self.request_id = new_request_id()
        self.started = time.time()
        self.upstream = None
        self.pump: asyncio.Task | None = None
        self.finished = False
        self.settled = False
        self.charge_lock = asyncio.Lock()
        self.reserved = 0  # taken from the balances so far
        self.hold: Hold | None = None  # every reservation of the session, settled once at the end
        self.charged = 0  # the session's charge so far (what the final settlement bills)
        self.totals = Tally()  # every token that arrived, reported or estimated (for the log)
        self.local = Tally()  # estimated since the last charge
        self.tools: list[Any] = []
        self.formats = {"in": "pcm16", "out": "pcm16"}
        self.first_frame_ms = 0
        self.channel = None
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]}
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.model = (query.get("model") or [""])[0]
        offered = self.scope.get("subprotocols") or []
        try:
            await self._open(headers, query)
        except RelayError as err:
            log.info("realtime connect refused (%s): %s", err.status, err.message)
            await self.accept(subprotocol="realtime" if "realtime" in offered else None)
            await self.send(text_data=error_event(self.request_id, err))
            await self.close(code=4000 + err.status)
            return
        await self.accept(subprotocol="realtime" if "realtime" in offered else None)
        self.pump = asyncio.ensure_future(self._pump_upstream())

    async def _open(self, headers: dict[str, str], query: dict[str, list[str]]) -> None:
        await state.ensure_options_loaded()
        self.caller = await auth.authenticate(headers, self.scope["path"])
        auth.check_ip(self.caller.token, client_ip.from_scope(self.scope))
        await rate_limit.check(self.caller.user.id)
        if self.caller.pinned_channel_id is None:
            auth.check_model_allowed(self.caller.token, self.model)
        try:
            self.price = price_for(
                self.model,
                self.caller.group,
                bool(self.caller.user.setting.get("accept_unset_model_ratio_model")),
            )
        except PriceNotSet:
            raise LocalError(
                f"模型 {self.model} 倍率或价格未配置; Model {self.model} ratio or price not set",
                status=500,
                code="model_price_error",
            ) from None
        self.acct = Account(self.caller.user.id, self.caller.token.id, not self.caller.token.unlimited_quota)
        pre = pre_consume_estimate(self.price, 0, 0)
        try:
            hold = await ledger.reserve(self.acct, pre)
        except QuotaError as exc:
            raise quota_error(exc) from None
        self.reserved = hold.amount  # what was really held (0 under the ledger's trusted rule)
        self.hold = hold
        if self.price.use_price:  # fixed-price models pay once, at connect
            self.charged = pre
        try:
            self.upstream = await self._dial_any(headers, query)
        except BaseException:
            await hold.refund()
            raise

    async def _dial_any(self, headers: dict[str, str], query: dict[str, list[str]]):
        """Dial the chosen channel; on failure the next one, RetryTimes times."""
        route = Route(self.caller, self.model, REALTIME_TYPES)
        channel = await route.first()
        while True:
            self.channel = channel  # type: ignore[assignment]
            try:
                # a multi-key channel dials with one of its keys
                return await self._dial(await key_choice.bind(channel), headers, query)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException, UpstreamError) as exc:
                log.info("realtime dial to channel #%s failed: %s", channel.id, exc)
            if (nxt := await route.another()) is None:
                # What the dial said (addresses, ports, the upstream's answer) is for our log, not the client.
                raise RelayError(
                    "do_request_failed: the upstream could not be reached",
                    status=500,
                    type="new_api_error",
                    code="do_request_failed",
                )
            channel = nxt

    async def _dial(self, c, headers: dict[str, str], query: dict[str, list[str]]):
        adaptor = adaptor_for(c.type)
        if not serves_realtime(adaptor):  # REALTIME_TYPES only holds types whose adaptor serves it
            raise OSError(f"channel type {c.type} does not serve realtime")
        upstream_model = c.model_mapping.get(self.model, self.model)
        target = adaptor.realtime_target(
            c,
            upstream_model,
            self.scope["path"],
            query,
            key_in_subprotocol="sec-websocket-protocol" in headers,
        )
        extra, subprotocols, url = target.headers, target.subprotocols, target.url
        check_header_values([*extra.items(), *(("Sec-WebSocket-Protocol", p) for p in subprotocols or ())])
        return await websockets.connect(
            url,
            additional_headers=extra,
            subprotocols=subprotocols,  # type: ignore[arg-type]
            open_timeout=10,
            close_timeout=UPSTREAM_CLOSE_SECONDS,
            proxy=proxies.of(c) or True,  # the channel's proxy, else websockets' default (the environment's)
        )

    # -- client → upstream ------------------------------------------------------------
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        if self.upstream is None:
            return
        text = text_data if text_data is not None else (bytes_data or b"").decode("utf-8", "replace")
        self._count_client(text)
        try:
            await self.upstream.send(text)
        except websockets.exceptions.ConnectionClosed:
            await self._close_client()

    def _count_client(self, text: str) -> None:
        try:
            event = orjson.loads(text)
        except orjson.JSONDecodeError:
            return
        if not isinstance(event, dict):
            return
        kind = event.get("type")
        if kind == "session.update":
            session = event.get("session") or {}
            if isinstance(session.get("tools"), list):
                self.tools = session["tools"]
            if isinstance(session.get("instructions"), str):
                self.local.text_in += count_text(session["instructions"], self.model)
        elif kind == "input_audio_buffer.append":
            self.local.audio_in += audio_tokens(
                str(event.get("audio") or ""), self.formats["in"], output=False
            )
        elif kind == "conversation.item.create":
            item = event.get("item") or {}
            for part in item.get("content") or []:
                if isinstance(part, dict) and part.get("type") == "input_text":
                    self.local.text_in += count_text(str(part.get("text") or ""), self.model)

    # -- upstream → client ------------------------------------------------------------
    async def _pump_upstream(self) -> None:
        try:
            async for message in self.upstream:  # type: ignore[attr-defined]
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                if not self.first_frame_ms:
                    self.first_frame_ms = int((time.time() - self.started) * 1000)
                await self.send(text_data=text)
                try:
                    event = orjson.loads(text)
                except orjson.JSONDecodeError:
                    continue
                if isinstance(event, dict) and not await self._on_upstream_event(event):
                    return
        except websockets.exceptions.ConnectionClosed:
            pass
        finally:
            await self._close_client()

    async def _on_upstream_event(self, event: dict[str, Any]) -> bool:
        """Count one upstream event; False when the session must end (balance ran out)."""
        kind = event.get("type")
        if kind in ("session.created", "session.updated"):
            session = event.get("session") or {}
            self.formats["in"] = str(session.get("input_audio_format") or "pcm16")
            self.formats["out"] = str(session.get("output_audio_format") or "pcm16")
        elif kind == "response.done":
            usage = (event.get("response") or {}).get("usage")
            if isinstance(usage, dict):
                self.local = Tally()  # the upstream's count covers what we estimated
                return await self._charge(Tally.from_usage(usage))
            for tool in self.tools:
                self.local.text_in += 8 + count_text(orjson.dumps(tool).decode(), self.model)
            estimate, self.local = self.local, Tally()
            return await self._charge(estimate)
        elif kind == "response.audio.delta":
            self.local.audio_out += audio_tokens(
                str(event.get("delta") or ""), self.formats["out"], output=True
            )
        elif kind in (
            "response.audio_transcript.delta",
            "response.text.delta",
            "response.function_call_arguments.delta",
        ):
            self.local.text_out += count_text(str(event.get("delta") or ""), self.model)
        return True

    async def _charge(self, tally: Tally) -> bool:
        """Count `tally` into the session; reserve its quota now so the balance is checked while we run."""
        if tally.empty():
            return True
        if self.channel is not None:  # the session's tokens count against the channel's TPM as they come
            await limits.add_tokens(self.channel, tally.input + tally.output)
        async with self.charge_lock:
            if self.settled:  # a pump that outlived the session's end: the bill is closed
                return False
            self.totals.add(tally)
            if self.price.use_price:
                return True
            quota = realtime_quota(self.price, tally, self.model)
            self.charged += quota  # it arrived, so it is billed even if the balance is short
            try:
                await ledger.reserve_more(self.hold, quota)  # type: ignore[arg-type]  # checked against the balance, never trusted
            except QuotaError as exc:
                await self.send(text_data=error_event(self.request_id, quota_error(exc)))
                return False
            self.reserved = self.hold.amount  # type: ignore[union-attr]
        return True

    # -- the end ------------------------------------------------------------------------
    async def _close_client(self) -> None:
        if not self.finished:
            await self.close()

    async def disconnect(self, code: int) -> None:
        if self.finished or self.upstream is None:
            return
        self.finished = True
        upstream, self.upstream = self.upstream, None
        # The bill first: whatever the upstream does next (hang, never answer the close), the
        # session is charged. A charge under way finishes first (the lock); later ones are refused.
        await self._settle()
        try:
            await asyncio.wait_for(upstream.close(), UPSTREAM_CLOSE_SECONDS + 1)
        except (TimeoutError, OSError, websockets.exceptions.WebSocketException):
            log.warning("realtime upstream of %s did not close in time", self.request_id)
        finally:
            if upstream.transport is not None:
                upstream.transport.abort()  # no-op once closed; drops a hung one
        if self.pump is not None and not self.pump.done():
            self.pump.cancel()  # nothing left for it to bill

    async def _settle(self) -> None:
        async with self.charge_lock:
            self.settled = True
            rest, self.local = self.local, Tally()
            if not rest.empty():
                self.totals.add(rest)
                if not self.price.use_price:
                    self.charged += realtime_quota(self.price, rest, self.model)
            # One hold for everything reserved in this session: the ledger applies charged − reserved
            # to the balances and queues the counters and the log row for the batched writer.
            await (self.hold or Hold(self.acct, 0)).settle(
                realtime_bill(
                    self.caller,
                    self.price,
                    self.totals,
                    self.channel.id,  # type: ignore[attr-defined]
                    model=self.model,
                    quota=self.charged,
                    frt_ms=self.first_frame_ms,
                    started=self.started,
                )
            )
        await rate_limit.record_success(self.caller.user.id)
