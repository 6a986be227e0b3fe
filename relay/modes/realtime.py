"""The OpenAI Realtime relay: GET /v1/realtime?model=… as a websocket (tasks-special.md §4, relay.md §13.6).

Auth by `Authorization: Bearer` or the `openai-insecure-api-key.<key>` subprotocol; frames are relayed
both ways to the channel's wss endpoint (OpenAI-compatible, or Azure's /openai/realtime).

Billing, exactly once per session:
- at connect the pre-consume estimate is reserved (the fixed price for priced models), which also
  refuses an empty balance;
- each upstream `response.done` with usage is reserved at once with the audio formula (relay.md §9.4),
  so the balance is checked while the session runs; when it runs out the client gets an error event
  and the socket closes, but what already arrived is still charged;
- usage the upstream does not report is estimated locally (client audio appends, input text items,
  instructions; upstream audio / transcript / text / tool-argument deltas) and charged on the next
  usage-less `response.done` or at the end;
- at the end one Settlement goes through the ledger (`Hold.settle`): the final charge is everything
  that arrived, the difference to what was reserved (the connect estimate) is returned, and the
  consume log row is written by the batched billing writer. Whichever side drops, the session ends
  through the same path.

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
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from urllib.parse import parse_qs, urlencode

import orjson
import websockets
import websockets.exceptions  # a submodule: the lazy package does not expose it by itself
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from billing import ledger, writer
from billing.ledger import Account, Hold, QuotaError
from billing.pricing import PriceNotSet, pre_consume_estimate, price_for
from billing.settlement import Settlement
from newapi_site import bus, client_ip
from newapi_site.options import options
from relay import auth, rate_limit, state
from relay.channels.types import ChannelStatus, ChannelType
from relay.edge.wire import new_request_id
from relay.errors import LocalError, RelayError
from relay.metering.charge import quota_error
from relay.metering.tokenizer import count_text
from relay.upstream.safe_paths import check_header_values

log = logging.getLogger("newapi.relay")
AUDIO_COMPLETION_RATIO = 2
# Closing the upstream socket waits at most this long for its close handshake: a hung upstream
# must not keep a finished session (and its worker's resources) around.
UPSTREAM_CLOSE_SECONDS = 2.0


def audio_ratio(model: str) -> float:
    if model.endswith("gpt-4o-realtime-preview-2024-12-17"):
        return 8
    return 10 if "mini" in model else 20


def realtime_quota(
    usage: dict[str, Any], model_ratio: float, group_ratio: float, completion_ratio: float, a_ratio: float
) -> int:
    inp = usage.get("input_token_details") or {}
    out = usage.get("output_token_details") or {}
    d = lambda v: Decimal(str(v or 0))  # noqa: E731
    tokens = (
        d(inp.get("text_tokens"))
        + d(out.get("text_tokens")) * d(completion_ratio)
        + d(inp.get("audio_tokens")) * d(a_ratio)
        + d(out.get("audio_tokens")) * d(a_ratio) * AUDIO_COMPLETION_RATIO
    )
    ratio = d(model_ratio) * d(group_ratio)
    quota = int((tokens * ratio).to_integral_value(ROUND_HALF_UP))
    return max(quota, 1) if ratio != 0 else quota


def audio_seconds(b64: str, fmt: str) -> float:
    """pcm16: 24 kHz, 2 bytes a sample; g711 and anything else: 8 kHz, 1 byte a sample (relay.md §8.3)."""
    try:
        size = len(base64.b64decode(b64 or "", validate=False))
    except (binascii.Error, ValueError):
        return 0.0
    return size / 2 / 24000 if fmt == "pcm16" else size / 8000


def audio_tokens(b64: str, fmt: str, output: bool) -> int:
    seconds = audio_seconds(b64, fmt)
    return int(seconds / 60 * 200 / 0.24) if output else int(seconds / 60 * 100 / 0.06)


@dataclass(slots=True)
class Tally:
    """Token counts in the usage shape, so local estimates and upstream usage share one formula."""

    text_in: int = 0
    audio_in: int = 0
    text_out: int = 0
    audio_out: int = 0

    def add(self, other: Tally) -> None:
        self.text_in += other.text_in
        self.audio_in += other.audio_in
        self.text_out += other.text_out
        self.audio_out += other.audio_out

    @property
    def input(self) -> int:
        return self.text_in + self.audio_in

    @property
    def output(self) -> int:
        return self.text_out + self.audio_out

    def empty(self) -> bool:
        return self.input + self.output == 0

    def usage(self) -> dict[str, Any]:
        return {
            "input_tokens": self.input,
            "output_tokens": self.output,
            "input_token_details": {"text_tokens": self.text_in, "audio_tokens": self.audio_in},
            "output_token_details": {"text_tokens": self.text_out, "audio_tokens": self.audio_out},
        }

    @classmethod
    def from_usage(cls, usage: dict[str, Any]) -> Tally:
        inp, out = usage.get("input_token_details") or {}, usage.get("output_token_details") or {}
        t = cls(
            int(inp.get("text_tokens") or 0),
            int(inp.get("audio_tokens") or 0),
            int(out.get("text_tokens") or 0),
            int(out.get("audio_tokens") or 0),
        )
        # Usage without details: count the totals as text.
        t.text_in += max(int(usage.get("input_tokens") or 0) - t.input, 0)
        t.text_out += max(int(usage.get("output_tokens") or 0) - t.output, 0)
        return t


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
        """Dial a channel; on failure try another one, RetryTimes times (tasks-special.md §4.1)."""
        index = await state.channels.index()
        pinned = self.caller.pinned_channel_id
        exclude: set[int] = set()
        retries = 0 if pinned is not None else options.get_int("RetryTimes", 0)
        last: Exception | None = None
        for _attempt in range(retries + 1):
            channel = self._choose(index, exclude)
            unusable = channel is None or channel.status != ChannelStatus.ENABLED
            # or added a moment ago through another process?
            if unusable and last is None and (fresh := await state.fresher_channels(index)) is not None:
                index, channel = fresh, self._choose(fresh, exclude)
            if pinned is not None and (channel is None or channel.status != ChannelStatus.ENABLED):
                raise LocalError("该渠道已被禁用或不存在 (channel disabled or missing)", status=403)
            if channel is None:
                break
            self.channel = channel  # type: ignore[assignment]
            try:
                return await self._dial(channel, headers, query)
            except (TimeoutError, OSError, websockets.exceptions.WebSocketException) as exc:
                log.info("realtime dial to channel #%s failed: %s", channel.id, exc)
                last = exc
                exclude.add(channel.id)
        if last is not None:
            # What the dial said (addresses, ports, the upstream's answer) is for our log, not the client.
            raise RelayError(
                "do_request_failed: the upstream could not be reached",
                status=500,
                type="new_api_error",
                code="do_request_failed",
            )
        raise LocalError(
            f"当前分组 {self.caller.group} 下对于模型 {self.model} 无可用渠道 (no available channel for model {self.model} in group {self.caller.group})",
            status=503,
            code="model_not_available",
        )

    def _choose(self, index: state.ChannelIndex, exclude: set[int]) -> state.ChannelInfo | None:
        pinned = self.caller.pinned_channel_id
        if pinned is not None:
            return index.channels.get(pinned)
        return index.pick(self.caller.group, self.model, exclude)

    async def _dial(self, c, headers: dict[str, str], query: dict[str, list[str]]):
        base = c.base_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        extra: dict[str, str] = {}
        subprotocols = None
        upstream_model = c.model_mapping.get(self.model, self.model)
        if c.type == ChannelType.AZURE:
            version = (query.get("api-version") or [""])[0] or c.other or settings.AZURE_DEFAULT_API_VERSION
            url = f"{base}/openai/realtime?" + urlencode(
                {"deployment": upstream_model.replace(".", ""), "api-version": version}
            )
            extra["api-key"] = c.key
        else:
            url = base + self.scope["path"] + "?" + urlencode({"model": upstream_model})
            if "sec-websocket-protocol" in headers:
                subprotocols = ["realtime", f"openai-insecure-api-key.{c.key}", "openai-beta.realtime-v1"]
            else:
                extra.update({"Authorization": f"Bearer {c.key}", "openai-beta": "realtime=v1"})
            if c.type == ChannelType.OPENAI and c.organization:
                extra["OpenAI-Organization"] = c.organization
        check_header_values([*extra.items(), *(("Sec-WebSocket-Protocol", p) for p in subprotocols or ())])
        return await websockets.connect(
            url,
            additional_headers=extra,
            subprotocols=subprotocols,  # type: ignore[arg-type]
            open_timeout=10,
            close_timeout=UPSTREAM_CLOSE_SECONDS,
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

    def _quota(self, tally: Tally) -> int:
        p = self.price
        return realtime_quota(
            tally.usage(), p.model_ratio, p.group_ratio, p.completion_ratio, audio_ratio(self.model)
        )

    async def _charge(self, tally: Tally) -> bool:
        """Count `tally` into the session; reserve its quota now so the balance is checked while we run."""
        if tally.empty():
            return True
        async with self.charge_lock:
            if self.settled:  # a pump that outlived the session's end: the bill is closed
                return False
            self.totals.add(tally)
            if self.price.use_price:
                return True
            quota = self._quota(tally)
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
                    self.charged += self._quota(rest)
            t, p = self.totals, self.price
            now = time.time()
            other = {
                "model_ratio": p.model_ratio,
                "group_ratio": p.group_ratio,
                "completion_ratio": p.completion_ratio,
                "model_price": p.model_price if p.use_price else -1,
                "frt": self.first_frame_ms,
                "ws": True,
                "audio_input": t.audio_in,
                "audio_output": t.audio_out,
                "text_input": t.text_in,
                "text_output": t.text_out,
                "audio_ratio": audio_ratio(self.model),
                "audio_completion_ratio": AUDIO_COMPLETION_RATIO,
                "admin_info": {"use_channel": [self.channel.id]},  # type: ignore[attr-defined]
            }
            log_row = {
                "user_id": self.caller.user.id,
                "username": self.caller.user.username,
                "created_at": int(now),
                "content": "",
                "prompt_tokens": t.input,
                "completion_tokens": t.output,
                "model_name": self.model,
                "token_name": self.caller.token.name,
                "token_id": self.caller.token.id,
                "quota": self.charged,
                "use_time": int(now - self.started),
                "is_stream": True,
                "channel_id": self.channel.id,  # type: ignore[attr-defined]
                "group": self.caller.group,
                "other": orjson.dumps(other).decode(),
            }
            # One hold for everything reserved in this session: the ledger applies charged − reserved
            # to the balances and queues the counters and the log row for the batched writer.
            await (self.hold or Hold(self.acct, 0)).settle(
                Settlement(
                    user_id=self.caller.user.id,
                    token_id=self.caller.token.id,
                    channel_id=self.channel.id,  # type: ignore[attr-defined]
                    user_delta=0,
                    token_delta=0,
                    quota=self.charged,
                    counted=self.price.use_price or not t.empty(),
                    log=log_row,
                    username=self.caller.user.username,
                    model_name=self.model,
                    tokens_used=t.input + t.output,
                )
            )
        await rate_limit.record_success(self.caller.user.id)
