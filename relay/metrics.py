"""Prometheus metrics: what the relay counts as it settles requests, and GET /metrics.

Off (METRICS_ENABLED false) nothing here is created and the relay's hooks cost one boolean test.
On, each web worker counts in plain Python and writes the sums once a second into
prometheus_client's memory-mapped files (multiprocess mode under `manage.py serve`, which points
PROMETHEUS_MULTIPROC_DIR at a fresh directory); a scrape, in whichever worker takes it, sums every
worker's files. Gauges that describe shared state (channels
enabled, billing queue depth) are read at scrape time instead of being kept up to date per request.
"""

from __future__ import annotations

import asyncio
import atexit
import hmac
import time
from bisect import bisect_left
from collections.abc import Iterator

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector

from billing.ledger import queue_key
from newapi_site import redis as r
from relay.channels.types import ChannelStatus
from relay.models import Channel

ENABLED: bool = settings.METRICS_ENABLED

# Latency buckets (seconds) from a cached answer to a long generation.
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300)
TTFB_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

FLUSH_SECONDS = 1.0

if ENABLED:
    REQUESTS = Counter(
        "newapi_relay_requests", "Relay requests by model, channel and status", ["model", "channel", "status"]
    )
    DURATION = Histogram(
        "newapi_relay_request_duration_seconds", "Relay request duration", buckets=DURATION_BUCKETS
    )
    TTFB = Histogram("newapi_relay_ttfb_seconds", "Time to the first streamed byte", buckets=TTFB_BUCKETS)
    TOKENS = Counter("newapi_relay_tokens", "Tokens relayed by kind", ["kind"])
    QUOTA = Counter("newapi_quota_consumed", "Quota charged for relay requests")


class _Histogram:
    """Bucket counts and a sum kept in plain Python until the next flush."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one is +Inf
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def flush_into(self, histogram: Histogram) -> None:
        # prometheus_client's own per-bucket values: one write per bucket touched, not per request
        for value, count in zip(histogram._buckets, self.counts, strict=True):
            if count:
                value.inc(count)
        if self.total:
            histogram._sum.inc(self.total)
        self.counts = [0] * len(self.counts)
        self.total = 0.0


class _Pending:
    """What this process counted since the last flush. A request adds to dicts and floats here (about
    a microsecond); prometheus_client's locked, memory-mapped writes happen once a second per
    label set, in a callback on the same event loop, so no lock is ever contended."""

    def __init__(self) -> None:
        self.requests: dict[tuple[str, str, str], int] = {}
        self.tokens = [0, 0, 0, 0]  # prompt, completion, cached, reasoning
        self.quota = 0
        self.duration = _Histogram(DURATION_BUCKETS)
        self.ttfb = _Histogram(TTFB_BUCKETS)
        self.scheduled = False

    def schedule(self) -> None:
        if self.scheduled:
            return
        self.scheduled = True
        try:
            asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)
        except RuntimeError:  # no event loop (a worker thread): write now
            self.flush()

    def flush(self) -> None:
        self.scheduled = False
        requests, self.requests = self.requests, {}
        for labels, count in requests.items():
            REQUESTS.labels(*labels).inc(count)
        for kind, count in zip(("prompt", "completion", "cached", "reasoning"), self.tokens, strict=True):
            if count:
                TOKENS.labels(kind).inc(count)
        self.tokens = [0, 0, 0, 0]
        if self.quota:
            QUOTA.inc(self.quota)
            self.quota = 0
        self.duration.flush_into(DURATION)
        self.ttfb.flush_into(TTFB)


_pending = _Pending()
if ENABLED:
    atexit.register(_pending.flush)  # a stopping worker writes what it counted last


def record_settled(
    model: str,
    channel_id: int,
    started: float,
    ttfb_ms: int,
    quota: int,
    prompt: int,
    completion: int,
    cached: int,
    reasoning: int,
) -> None:
    """A request answered and billed. Callers test ENABLED first."""
    pending = _pending
    key = (model, str(channel_id), "200")
    pending.requests[key] = pending.requests.get(key, 0) + 1
    pending.duration.observe(max(time.time() - started, 0.0))
    if ttfb_ms >= 0:  # streams only: the others pass a negative first-response time
        pending.ttfb.observe(ttfb_ms / 1000)
    tokens = pending.tokens
    tokens[0] += prompt
    tokens[1] += completion
    tokens[2] += cached
    tokens[3] += reasoning
    if quota > 0:
        pending.quota += quota
    pending.schedule()


def record_refused(status: int) -> None:
    """A relay request answered with an error (before or after a channel was tried)."""
    key = ("", "", str(status))
    _pending.requests[key] = _pending.requests.get(key, 0) + 1
    _pending.schedule()


class SharedState:
    """Gauges read when scraped: each channel's enabled flag and the queued billing writes."""

    def collect(self) -> Iterator[Metric]:
        enabled = GaugeMetricFamily(
            "newapi_channel_enabled", "1 when the channel is enabled", labels=["channel", "name"]
        )
        for pk, name, status in Channel.objects.values_list("id", "name", "status").order_by("id"):
            enabled.add_metric([str(pk), name or ""], 1.0 if status == ChannelStatus.ENABLED else 0.0)
        yield enabled
        depth = r.sync_redis().llen(queue_key()) if r.redis_enabled() else 0
        yield GaugeMetricFamily(
            "newapi_billing_queue_depth", "Billing writes queued in Redis", value=int(depth)
        )


_registry: CollectorRegistry | None = None


def registry() -> CollectorRegistry:
    global _registry
    if _registry is None:
        if settings.PROMETHEUS_MULTIPROC_DIR:
            _registry = CollectorRegistry()
            MultiProcessCollector(_registry)
        else:  # one process: its own counters
            _registry = REGISTRY
        _registry.register(SharedState())
    return _registry


def metrics_view(request: HttpRequest) -> HttpResponse:
    if not ENABLED:
        return HttpResponse(status=404)
    if settings.METRICS_TOKEN:
        expected = f"Bearer {settings.METRICS_TOKEN}".encode()
        given = request.headers.get("Authorization", "").encode()
        if not hmac.compare_digest(given, expected):
            return HttpResponse("unauthorized\n", status=401, content_type="text/plain")
    return HttpResponse(generate_latest(registry()), content_type=CONTENT_TYPE_LATEST)
