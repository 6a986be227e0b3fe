"""Per-channel proxies (`setting.proxy`): a channel with one sends its upstream calls (chat, streams,
embeddings, channel tests) through a real HTTP or SOCKS5 proxy on 127.0.0.1, credentials included;
a channel without one never touches a proxy; a URL the relay cannot use is refused when saved."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import openai
import pytest
from django.conf import settings

from billing.models import Log
from relay.models import Channel
from tasks.polling import poll_midjourney, poll_suno
from tests.admin.conftest import admin_url, root_client
from tests.admin.test_channels import channel_form
from tests.conftest import live, make_channel, make_token, make_user, propagated, settle
from tests.fakes.modes_upstream import FakeModes
from tests.fakes.proxy_servers import HttpProxy, Socks5Proxy
from tests.fakes.task_upstream import FakeTaskUpstream
from tests.fakes.vertex_upstream import FakeVertex
from tests.ops.conftest import fake_ops, fake_ops_server
from tests.relay.test_realtime import MODEL as REALTIME_MODEL
from tests.relay.test_realtime import persona as realtime_persona
from tests.relay.test_realtime import realtime_upstream, session, session_log, ws_url
from tests.relay.test_vertex import CLAUDE, service_account

pytestmark = [live, pytest.mark.relay]
__all__ = [
    "fake_ops",
    "fake_ops_server",
    "realtime_upstream",
    "root_client",
]  # fixtures, imported for this module's tests


@pytest.fixture(scope="module")
def http_proxy() -> HttpProxy:
    return HttpProxy(credentials=("puser", "p@ss")).start()


@pytest.fixture(scope="module")
def socks_proxy() -> Socks5Proxy:
    return Socks5Proxy(credentials=("suser", "s3cret")).start()


def client_for(gateway, name: str) -> openai.OpenAI:
    token = make_token(make_user(name))
    propagated()
    return openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)


def chat_and_stream(client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    stream = client.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices)


def upstream_address(fake_upstream) -> str:
    return f"127.0.0.1:{fake_upstream.port}"


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_channel_with_proxy_goes_through_it(gateway, fake_upstream, http_proxy, socks_proxy, kind):
    proxy = http_proxy if kind == "http" else socks_proxy
    other = socks_proxy if kind == "http" else http_proxy
    key = f"proxied-{kind}"
    make_channel(fake_upstream.base_url, key=key, setting=json.dumps({"proxy": proxy.url(kind)}))
    client = client_for(gateway, f"px-{kind}")
    seen, seen_other, upstream_before = (
        len(proxy.targets),
        len(other.targets),
        len(fake_upstream.requests_for(key)),
    )

    chat_and_stream(client)
    client.embeddings.create(model="text-embedding-3-small", input="hi")

    assert len(fake_upstream.requests_for(key)) == upstream_before + 3
    through = proxy.targets[seen:]
    # every upstream connection went through the proxy (a stream may reuse the chat's tunnel)
    assert through and set(through) == {upstream_address(fake_upstream)}, through
    assert len(other.targets) == seen_other
    offered = proxy.auth[-1]
    assert offered == ("Basic cHVzZXI6cEBzcw==" if kind == "http" else "suser:s3cret")
    settle()
    assert Log.objects.filter(type=2, channel_id__isnull=False).count() == 3  # billed as usual


def test_channel_without_proxy_stays_direct(gateway, fake_upstream, http_proxy, socks_proxy):
    make_channel(fake_upstream.base_url, key="direct-key")
    client = client_for(gateway, "px-direct")
    before = (len(http_proxy.targets), len(socks_proxy.targets))
    chat_and_stream(client)
    assert fake_upstream.requests_for("direct-key")
    assert (len(http_proxy.targets), len(socks_proxy.targets)) == before


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_wrong_proxy_credentials_fail_the_request_not_the_gateway(
    gateway, fake_upstream, http_proxy, socks_proxy, kind
):
    proxy = http_proxy if kind == "http" else socks_proxy
    password = proxy.credentials[1]
    bad = proxy.url(kind).replace(f":{password}@", ":Bad-Secret-7731@")
    key = f"bad-proxy-{kind}"
    make_channel(fake_upstream.base_url, key=key, setting=json.dumps({"proxy": bad}))
    client = client_for(gateway, f"px-bad-{kind}")
    with pytest.raises(openai.APIStatusError) as exc:
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert exc.value.status_code >= 400
    assert "Bad-Secret-7731" not in exc.value.response.text  # the proxy's password never reaches the client
    assert not fake_upstream.requests_for(key)
    logged = (Path(settings.DATA_DIR) / f"gateway-{gateway.port}.log").read_text(errors="replace")
    assert "Bad-Secret-7731" not in logged  # nor the gateway's log
    if kind == "socks5":  # a failure of the proxy itself is logged with its address only
        assert f"through proxy socks5://127.0.0.1:{proxy.port} failed" in logged


def test_channel_test_goes_through_the_proxy(fake_upstream, socks_proxy, as_admin):
    channel = make_channel(
        fake_upstream.base_url, key="tested-proxied", setting=json.dumps({"proxy": socks_proxy.url("socks5")})
    )
    seen = len(socks_proxy.targets)
    body = as_admin.get(f"/api/channel/test/{channel.pk}", {"model": "gpt-4o-mini"})
    assert body["success"] is True, body
    assert socks_proxy.targets[seen:] == [upstream_address(fake_upstream)]
    assert fake_upstream.requests_for("tested-proxied")


@pytest.mark.parametrize(
    "proxy",
    ["ftp://127.0.0.1:21", "127.0.0.1:8080", "http://", "socks4://127.0.0.1:1080", "http://h:99999"],
)
def test_unusable_proxy_url_is_refused_when_saved(as_admin, proxy):
    body = as_admin.post(
        "/api/channel/",
        {
            "type": 1,
            "name": "bad-proxy",
            "key": "k",
            "models": "gpt-4o-mini",
            "group": "default",
            "setting": json.dumps({"proxy": proxy}),
        },
    )
    assert body["success"] is False and "proxy" in body["message"], body
    assert not Channel.objects.filter(name="bad-proxy").exists()


def test_limits_must_be_whole_numbers(as_admin):
    for setting in ({"rpm_limit": -1}, {"tpm_limit": "many"}, {"rpm_limit": 1.5}):
        body = as_admin.post(
            "/api/channel/",
            {
                "type": 1,
                "name": "bad-limit",
                "key": "k",
                "models": "gpt-4o-mini",
                "setting": json.dumps(setting),
            },
        )
        assert body["success"] is False and "limit" in body["message"], (setting, body)
    body = as_admin.post(
        "/api/channel/",
        {
            "type": 1,
            "name": "good",
            "key": "k",
            "models": "gpt-4o-mini",
            "setting": json.dumps({"proxy": "socks5://u:p@127.0.0.1:1080", "rpm_limit": 60, "tpm_limit": 0}),
        },
    )
    assert body["success"] is True, body


def test_media_and_rerank_go_through_the_proxy(gateway, http_proxy):
    fake = FakeModes().start()
    setting = json.dumps({"proxy": http_proxy.url("http")})
    make_channel(fake.base_url, key="img-proxied", models="dall-e-3", setting=setting)
    make_channel(
        fake.base_url,
        key="jina-proxied",
        type=38,
        models="jina-reranker-v2-base-multilingual",
        setting=setting,
    )
    token = make_token(make_user("px-media"))
    propagated()
    seen = len(http_proxy.targets)
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{token.key}", max_retries=0)
    assert client.images.generate(model="dall-e-3", prompt="a cat").data
    r = httpx.post(
        f"{gateway.v1}/rerank",
        headers={"Authorization": f"Bearer sk-{token.key}"},
        json={"model": "jina-reranker-v2-base-multilingual", "query": "q", "documents": ["a", "bb"]},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    assert fake.last("img-proxied") and fake.last("jina-proxied")
    assert set(http_proxy.targets[seen:]) == {f"127.0.0.1:{fake.port}"}, http_proxy.targets[seen:]


def test_task_submits_and_polls_go_through_the_proxy(gateway, http_proxy, socks_proxy):
    upstream = FakeTaskUpstream().start()
    address = f"127.0.0.1:{upstream.port}"
    mj_setting = json.dumps({"proxy": http_proxy.url("http")})
    suno_setting = json.dumps({"proxy": socks_proxy.url("socks5")})
    make_channel(upstream.base_url, key="mj-key-proxied", type=2, models="mj_imagine", setting=mj_setting)
    make_channel(
        upstream.base_url, key="suno-key-proxied", type=36, models="suno_music", setting=suno_setting
    )
    token = make_token(make_user("px-tasks"))
    propagated()
    via_http, via_socks = http_proxy.targets.count(address), socks_proxy.targets.count(address)
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        mj = c.post(
            "/mj/submit/imagine", json={"prompt": "a cat"}, headers={"mj-api-secret": f"sk-{token.key}"}
        )
        suno = c.post(
            "/suno/submit/music",
            json={"prompt": "a song"},
            headers={"Authorization": f"Bearer sk-{token.key}"},
        )
    assert mj.status_code == 200 and mj.json()["code"] == 1, mj.text
    assert suno.status_code == 200, suno.text
    assert http_proxy.targets.count(address) == via_http + 1  # the Midjourney channel's proxy
    assert socks_proxy.targets.count(address) == via_socks + 1  # the Suno channel's
    # the background refresh of unfinished tasks takes each channel's route too
    before = len(upstream.requests)
    poll_midjourney()
    poll_suno()
    assert [r.path for r in upstream.requests[before:]] == ["/mj/task/list-by-condition", "/suno/fetch"]
    assert http_proxy.targets.count(address) == via_http + 2
    assert socks_proxy.targets.count(address) == via_socks + 2


@pytest.mark.parametrize("kind", ["http", "socks5"])
def test_realtime_dials_through_the_proxy(gateway, realtime_upstream, http_proxy, socks_proxy, kind):
    proxy = http_proxy if kind == "http" else socks_proxy
    make_channel(
        realtime_upstream.base_url,
        key="rt-key",
        models=REALTIME_MODEL,
        setting=json.dumps({"proxy": proxy.url(kind)}),
    )
    user, token = realtime_persona(f"px-rt-{kind}")
    seen = len(proxy.targets)
    events = asyncio.run(session(ws_url(gateway), token.key, 1))
    assert events[-1]["type"] == "response.done", events
    assert proxy.targets[seen:] == [f"127.0.0.1:{realtime_upstream.port}"]
    assert session_log(user).quota > 0


def test_the_admin_form_checks_the_setting(root_client):
    form = channel_form(name="admin-proxy", type="1", models="gpt-4o-mini", group="default")
    page = root_client.post(admin_url(Channel, "add"), {**form, "setting": '{"proxy": "ftp://127.0.0.1:21"}'})
    assert page.status_code == 200 and "setting.proxy: proxy scheme must be one of" in page.content.decode()
    page = root_client.post(admin_url(Channel, "add"), {**form, "setting": '{"rpm_limit": -5}'})
    assert page.status_code == 200 and "setting.rpm_limit must be 0" in page.content.decode()
    assert not Channel.objects.filter(name="admin-proxy").exists()
    good = '{"proxy": "socks5://u:p@127.0.0.1:1080", "rpm_limit": 60, "tpm_limit": 100000}'
    assert root_client.post(admin_url(Channel, "add"), {**form, "setting": good}).status_code == 302
    assert json.loads(Channel.objects.get(name="admin-proxy").setting)["rpm_limit"] == 60


def test_vertex_token_and_request_go_through_the_proxy(gateway, http_proxy):
    vertex = FakeVertex().start()
    sa = service_account(vertex, "proxied@proj-1.iam.gserviceaccount.com")
    setting = json.dumps({"proxy": http_proxy.url("http")})
    make_channel(
        vertex.base_url,
        key=sa,
        name="vertex-proxied",
        type=41,
        models=CLAUDE,
        other="us-east5",
        setting=setting,
    )
    client = client_for(gateway, "px-vertex")
    seen = len(http_proxy.targets)
    reply = client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": "hi"}])
    assert reply.choices[0].message.content
    # one connection for the OAuth token, one for the request (this proxy closes each after one)
    assert http_proxy.targets[seen:] == [f"127.0.0.1:{vertex.port}"] * 2


def test_balance_query_goes_through_the_proxy(as_admin, socks_proxy, fake_ops):
    setting = json.dumps({"proxy": socks_proxy.url("socks5")})
    channel = make_channel(fake_ops.base_url, key="bal-key", setting=setting)
    seen = len(socks_proxy.targets)
    body = as_admin.get(f"/api/channel/update_balance/{channel.pk}")
    assert body == {"success": True, "message": "", "balance": 75.0}
    assert socks_proxy.targets[seen:] == [f"127.0.0.1:{fake_ops.port}"]  # both queries, one connection
