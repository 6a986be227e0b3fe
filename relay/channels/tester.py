"""Channel test.

One tiny request ("hi", a few output tokens, or one embedding) goes through the channel's own
adaptor, exactly as a relayed request would. The elapsed time is stored on the channel
(response_time ms, test_time s), failures included. Then the automatic status rules:

- disable (status 3, reason in other_info) when the option AutomaticDisableChannelEnabled is on,
  the channel allows it (auto_ban) and the test failed with a fatal error (relay/channels/health.py's
  rules) or took longer than ChannelDisableThreshold seconds (0 = never). New API let the slow
  path bypass the option; here the option is the one master switch for automatic disabling.
- enable an auto-disabled (status 3) channel when AutomaticEnableChannelEnabled is on and the
  test succeeded. Manually disabled channels (status 2) are never touched.

Nobody is billed and no consume log is written: New API logged a consume entry for root that
charged no one, which only inflated root's usage statistics.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass

import httpx
import orjson
from asgiref.sync import async_to_sync, sync_to_async

from billing import notifications
from newapi_site import bus
from newapi_site.options import options
from relay import state
from relay.adaptors import adaptor_for, provider_for
from relay.adaptors.base import RelayContext, needs_setup
from relay.channels import key_choice, key_status
from relay.channels.types import ChannelType
from relay.errors import RelayError, UpstreamError, upstream_error_from_response
from relay.models import CHANNEL_AUTO_DISABLED, CHANNEL_ENABLED, CHANNEL_MANUALLY_DISABLED, Channel
from relay.upstream import http, proxies

REQUEST_FAILED = "do_request_failed"
log = logging.getLogger("newapi.relay")

DEFAULT_TEST_MODEL = "gpt-4o-mini"
TEST_TIMEOUT = httpx.Timeout(60.0, connect=10.0)


@dataclass(slots=True)
class TestResult:
    __test__ = False  # not a pytest class

    channel_id: int
    success: bool
    message: str
    time_ms: int
    model: str = ""
    status_change: str = ""  # "disabled" | "enabled" | ""

    @property
    def seconds(self) -> float:
        return self.time_ms / 1000

    def __str__(self) -> str:
        outcome = "ok" if self.success else f"failed: {self.message}"
        change = f" (channel {self.status_change})" if self.status_change else ""
        return f"{self.model or '-'} {outcome} in {self.seconds:.2f}s{change}"


def pick_model(channel: Channel, model: str | None) -> str:
    if model:
        return model
    if channel.test_model:
        return channel.test_model.strip()
    models = channel.model_list()
    return models[0] if models else DEFAULT_TEST_MODEL


def is_embedding(model: str, channel_type: int) -> bool:
    lower = model.lower()
    return (
        channel_type == ChannelType.MOKA_AI
        or "embedding" in lower
        or lower.startswith("m3e")
        or "bge-" in lower
        or "embed" in lower
    )


def test_body(model: str, embedding: bool) -> dict:
    if embedding:
        return {"model": model, "input": ["hello world"]}
    body: dict = {"model": model, "messages": [{"role": "user", "content": "hi"}], "stream": False}
    lower = model.lower()
    if lower.startswith(("o1", "o3", "o4")):
        body["max_completion_tokens"] = 10
    elif "thinking" in lower:
        if "claude" not in lower:
            body["max_tokens"] = 50
    elif "gemini" in lower:
        body["max_tokens"] = 300
    else:
        body["max_tokens"] = 10
    return body


async def send_test(info: state.ChannelInfo, model: str, client: httpx.AsyncClient) -> None:
    """One request through the channel's adaptor; raises RelayError when the channel did not answer well."""
    embedding = is_embedding(model, info.type)
    body = test_body(model, embedding)
    ctx = RelayContext(
        mode="embeddings" if embedding else "chat",
        channel=info,
        origin_model=model,
        upstream_model=info.model_mapping.get(model, model),
        path="/v1/embeddings" if embedding else "/v1/chat/completions",
        query="",
        body=body,
        raw_body=orjson.dumps(body),
        client_headers={"content-type": "application/json"},
        options=options,
    )
    adaptor = adaptor_for(info.type)
    try:
        if needs_setup(adaptor):  # an OAuth token first (Vertex), as a relayed request would
            await adaptor.setup(ctx)
    except httpx.HTTPError as exc:
        raise http.network_error(exc) from None
    upstream = adaptor.build_request(ctx)
    try:
        resp = await client.request(
            upstream.method,
            upstream.url,
            headers=upstream.headers,
            content=upstream.body,
            timeout=TEST_TIMEOUT,
        )
    except httpx.HTTPError as exc:
        raise request_failed(upstream.method, upstream.url, exc) from None
    if resp.status_code // 100 != 2:
        raise upstream_error_from_response(resp.status_code, resp.content)
    # A reply without usage still proves the channel works (the relay counts tokens itself).
    adaptor.parse_response(ctx, resp.status_code, resp.content, resp.headers.get("content-type", ""))


async def test_channel(
    channel: Channel | int, model: str | None = None, *, client: httpx.AsyncClient | None = None
) -> TestResult:
    row = await sync_to_async(_load)(channel)
    if row is None:
        return TestResult(
            int(channel if isinstance(channel, int) else channel.pk),
            False,
            "渠道不存在 (channel not found)",
            0,
        )
    chosen = pick_model(row, model)
    provider = provider_for(row.type)
    if provider is not None and provider.task_platform:
        return TestResult(
            row.pk,
            False,
            f"{provider.task_platform} 渠道不支持测试 (this channel type cannot be tested)",
            0,
            chosen,
        )
    info = state.channel_info(row)
    await state.ensure_options_loaded()  # adaptors read options; never a DB read on the event loop
    proxy = proxies.of(info)  # a channel test takes the channel's route, proxy included
    client = http.client_for(proxy) if proxy else client or http.client()
    if info.keys:
        return await test_keys(row, info, chosen, client)
    started = time.monotonic()
    error: RelayError | None = None
    try:
        await send_test(info, chosen, client)
    except RelayError as exc:
        error = exc
    elapsed_ms = int((time.monotonic() - started) * 1000)
    change = await sync_to_async(apply_outcome)(row, error, elapsed_ms)
    if error is not None:
        return TestResult(row.pk, False, describe(error), elapsed_ms, chosen, change)
    return TestResult(row.pk, True, "", elapsed_ms, chosen, change)


test_channel.__test__ = False  # type: ignore[attr-defined]


def request_failed(method: str, url: str, exc: httpx.HTTPError) -> UpstreamError:
    """The test's request never got an answer: name the URL and the reason, as Go's client does
    (`Post "https://…/v1/chat/completions": dial tcp …: connection refused`). Only admins see it;
    the query is left out, where some providers carry the key."""
    shown = url.split("?", 1)[0]
    reason = str(exc) or type(exc).__name__
    return UpstreamError(
        f'{method.title()} "{shown}": {reason}', status=500, type="new_api_error", code=REQUEST_FAILED
    )


def describe(error: RelayError) -> str:
    if isinstance(error, UpstreamError) and error.code != REQUEST_FAILED:
        return f"status code {error.status}: {error.message}"
    return error.message


async def test_keys(
    row: Channel, info: state.ChannelInfo, model: str, client: httpx.AsyncClient
) -> TestResult:
    """A multi-key channel: every key is tested on its own and the status rules apply to each key
    (a key failing fatally is disabled alone, an auto-disabled key that passes comes back); the
    channel follows its keys (relay/channels/key_status.py). Response time: the mean per key."""
    failures: list[str] = []
    total_ms = 0
    for attempt in key_choice.each_key(info):
        started = time.monotonic()
        error: RelayError | None = None
        try:
            await send_test(attempt, model, client)
        except RelayError as exc:
            error = exc
        elapsed_ms = int((time.monotonic() - started) * 1000)
        total_ms += elapsed_ms
        await sync_to_async(apply_key_outcome)(row, attempt.key_index, error, elapsed_ms)
        if error is not None:
            failures.append(f"key #{attempt.key_index}: {describe(error)}")
    mean_ms = total_ms // max(len(info.keys), 1)
    change = await sync_to_async(_record_keys_test)(row, mean_ms)
    return TestResult(row.pk, not failures, "; ".join(failures), mean_ms, model, change)


def apply_key_outcome(row: Channel, index: int, error: RelayError | None, elapsed_ms: int) -> None:
    """The channel rules (apply_outcome) for one key; a manually disabled channel is left alone."""
    if row.status == CHANNEL_MANUALLY_DISABLED:
        return
    auto_ban = (row.auto_ban if row.auto_ban is not None else 1) == 1
    reason = disable_reason(error, elapsed_ms, int(row.type or 0)) if auto_ban else None
    if reason is not None:
        if key_status.disable_key(row.pk, index, reason):
            log.warning("key %s of channel #%s disabled by its test: %s", index, row.pk, reason)
        return
    if (
        error is None
        and options.get_bool("AutomaticEnableChannelEnabled")
        and key_status.enable_key(row.pk, index)
    ):
        log.info("key %s of channel #%s re-enabled by its test", index, row.pk)


def _record_keys_test(row: Channel, elapsed_ms: int) -> str:
    Channel.objects.filter(pk=row.pk).update(response_time=elapsed_ms, test_time=int(time.time()))
    status = Channel.objects.filter(pk=row.pk).values_list("status", flat=True).first()
    if row.status == CHANNEL_ENABLED and status == CHANNEL_AUTO_DISABLED:
        return "disabled"
    if row.status == CHANNEL_AUTO_DISABLED and status == CHANNEL_ENABLED:
        return "enabled"
    return ""


def _load(channel: Channel | int) -> Channel | None:
    channel_id = channel if isinstance(channel, int) else channel.pk
    return Channel.objects.filter(pk=channel_id).first()


# -- outcome: response time and automatic status changes --------------------------------------
def disable_threshold_ms() -> int:
    return int(options.get_float("ChannelDisableThreshold", 5) * 1000)


def disable_reason(error: RelayError | None, elapsed_ms: int, channel_type: int) -> str | None:
    """Why this test result disables the channel, or None."""
    from relay.channels.health import is_fatal

    if not options.get_bool("AutomaticDisableChannelEnabled"):
        return None
    if error is not None and isinstance(error, UpstreamError):
        return error.message if is_fatal(channel_type, error) else None
    threshold = disable_threshold_ms()
    if threshold > 0 and elapsed_ms > threshold:
        return f"响应时间 {elapsed_ms / 1000:.2f}s 超过阈值 {threshold / 1000:.2f}s (response time over the threshold)"
    return None


def apply_outcome(row: Channel, error: RelayError | None, elapsed_ms: int) -> str:
    Channel.objects.filter(pk=row.pk).update(response_time=elapsed_ms, test_time=int(time.time()))
    if row.status == CHANNEL_ENABLED and (row.auto_ban if row.auto_ban is not None else 1) == 1:
        reason = disable_reason(error, elapsed_ms, int(row.type or 0))
        if reason is not None:
            from relay.channels.health import disable_channel

            state.channels.mark_disabled(row.pk)
            if disable_channel(row.pk, reason):
                log.warning("channel #%s disabled by its test: %s", row.pk, reason)
                return "disabled"
    if (
        row.status == CHANNEL_AUTO_DISABLED
        and error is None
        and options.get_bool("AutomaticEnableChannelEnabled")
        and enable_channel(row.pk)
    ):
        log.info("channel #%s re-enabled by its test", row.pk)
        return "enabled"
    return ""


def enable_channel(channel_id: int) -> bool:
    """Status 3 → 1 (only from auto-disabled), reason cleared, abilities rebuilt, processes told."""
    from django.db import transaction

    from relay.channels.abilities import rebuild_abilities

    with transaction.atomic():
        row = Channel.objects.select_for_update().filter(pk=channel_id).first()
        if row is None or row.status != CHANNEL_AUTO_DISABLED:
            return False
        info = _json_object(row.other_info)
        info.pop("status_reason", None)
        info["status_time"] = int(time.time())
        Channel.objects.filter(pk=channel_id).update(
            status=CHANNEL_ENABLED, other_info=json.dumps(info, ensure_ascii=False)
        )
        row.status = CHANNEL_ENABLED
        rebuild_abilities(row)
    bus.publish("channels")
    notifications.notify_channel_enabled(channel_id, row.name or "", CHANNEL_ENABLED)
    return True


def _json_object(raw: str | None) -> dict:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# -- synchronous entry points (views, admin, Celery) -----------------------------------------------
async def _with_own_client(fn, *args, **kwargs):
    # Called from a fresh event loop (async_to_sync outside a server): a private client, closed after.
    async with httpx.AsyncClient(follow_redirects=False) as client:
        return await fn(*args, client=client, **kwargs)


def test_channel_sync(channel: Channel | int, model: str | None = None) -> TestResult:
    return async_to_sync(_with_own_client)(test_channel, channel, model)


test_channel_sync.__test__ = False  # type: ignore[attr-defined]


async def _test_all(ids: list[int], *, client: httpx.AsyncClient) -> list[TestResult]:
    from django.conf import settings

    results = []
    for i, channel_id in enumerate(ids):
        if i and settings.POLLING_INTERVAL:
            await asyncio.sleep(settings.POLLING_INTERVAL)
        results.append(await test_channel(channel_id, client=client))
    return results


def test_all_channels() -> list[TestResult]:
    """Every channel, whatever its status, highest priority first."""
    ids = list(Channel.objects.order_by("-priority", "id").values_list("pk", flat=True))
    return async_to_sync(_with_own_client)(_test_all, ids)


test_all_channels.__test__ = False  # type: ignore[attr-defined]
