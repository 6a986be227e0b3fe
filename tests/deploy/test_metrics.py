"""GET /metrics: Prometheus text summed over every web worker of `manage.py serve`."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from billing.models import Log
from relay.models import Channel
from tests.conftest import live, make_channel, make_token, make_user
from tests.deploy.nodes import Node, start_node

SCRAPE_TOKEN = "scrape-secret"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def scrape(node: Node) -> dict[tuple[str, tuple], float]:
    resp = httpx.get(f"{node.url}/metrics", headers={"Authorization": f"Bearer {SCRAPE_TOKEN}"}, timeout=10)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"].startswith("text/plain")
    return samples(resp.text)


@pytest.fixture
def metrics_node(tmp_path: Path, django_db_blocker):
    node = start_node(tmp_path / "node", METRICS_ENABLED="true", METRICS_TOKEN=SCRAPE_TOKEN)
    yield node
    assert node.stop() == 0


@live
def test_metrics_is_404_when_disabled(gateway) -> None:
    assert httpx.get(f"{gateway.url}/metrics", timeout=5).status_code == 404


@live
def test_metrics_sum_every_worker(metrics_node: Node, fake_upstream) -> None:
    channel = make_channel(fake_upstream.base_url, key="metrics-key")
    off = make_channel(fake_upstream.base_url, key="metrics-off", status=2)
    user = make_user("metrics-user")
    token = make_token(user)
    auth = {"Authorization": f"Bearer sk-{token.key}"}
    chat = f"{metrics_node.url}/v1/chat/completions"
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}

    assert httpx.get(f"{metrics_node.url}/metrics", timeout=5).status_code == 401
    wrong = httpx.get(f"{metrics_node.url}/metrics", headers={"Authorization": "Bearer nope"}, timeout=5)
    assert wrong.status_code == 401

    for _ in range(6):  # a new connection each: the kernel spreads them over both workers
        assert httpx.post(chat, json=body, headers=auth, timeout=10).status_code == 200
    for _ in range(3):
        streamed = httpx.post(chat, json={**body, "stream": True, "stream_options": {"include_usage": True}},
                              headers=auth, timeout=10)
        assert streamed.status_code == 200 and "[DONE]" in streamed.text
    refused = httpx.post(chat, json=body, headers={"Authorization": "Bearer sk-nonsense"}, timeout=10)
    assert refused.status_code == 401

    deadline = time.time() + 10
    while Log.objects.filter(token_id=token.pk).count() < 9 and time.time() < deadline:
        time.sleep(0.1)
    charged = sum(Log.objects.filter(token_id=token.pk).values_list("quota", flat=True))
    assert charged > 0


    labels = (("channel", str(channel.pk)), ("model", "gpt-4o-mini"), ("status", "200"))
    deadline = time.time() + 5  # each worker writes what it counted once a second
    while scrape(metrics_node).get(("newapi_relay_requests_total", labels)) != 9 and time.time() < deadline:
        time.sleep(0.2)
    for _ in range(4):  # whichever worker answers the scrape, it reports everyone's counts
        got = scrape(metrics_node)
        assert got[("newapi_relay_requests_total", labels)] == 9
        assert got[("newapi_relay_requests_total", (("channel", ""), ("model", ""), ("status", "401")))] >= 1
        assert got[("newapi_relay_request_duration_seconds_count", ())] == 9
        assert got[("newapi_relay_ttfb_seconds_count", ())] == 3
        assert got[("newapi_relay_tokens_total", (("kind", "prompt"),))] == 9 * fake_upstream.usage_prompt
        assert got[("newapi_relay_tokens_total", (("kind", "completion"),))] == 9 * fake_upstream.usage_completion
        assert got[("newapi_quota_consumed_total", ())] == charged
        assert got[("newapi_channel_enabled", (("channel", str(channel.pk)), ("name", channel.name)))] == 1
        assert got[("newapi_channel_enabled", (("channel", str(off.pk)), ("name", off.name)))] == 0
        assert ("newapi_billing_queue_depth", ()) in got

    prom_dir = next(metrics_node.data_dir.glob("prometheus-*"))
    assert len({f.name for f in prom_dir.glob("counter_*.db")}) == 2  # each worker counted into its own file
    Channel.objects.filter(pk=channel.pk).update(status=3)
    got = scrape(metrics_node)
    assert got[("newapi_channel_enabled", (("channel", str(channel.pk)), ("name", channel.name)))] == 0

    assert metrics_node.stop() == 0
    assert not list(metrics_node.data_dir.glob("prometheus-*"))  # serve cleans its directory
