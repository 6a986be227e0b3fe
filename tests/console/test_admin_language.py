"""The admin names the apps' models in the reader's language: index, breadcrumbs, list and page headings."""

from __future__ import annotations

import re

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.utils import translation

from newapi_site.roles import ROLE_ROOT
from relay.models import Channel
from tests.conftest import make_user

pytestmark = pytest.mark.django_db
OUR_APPS = ("accounts", "relay", "billing", "tasks")


def _crumbs(html: str) -> str:
    found = re.search(r'<div class="breadcrumbs">(.*?)</div>', html, re.S)
    assert found, html[:500]
    return re.sub(r"<[^>]+>|\s+", " ", found.group(1))


def _h1(html: str) -> str:
    return re.findall(r"<h1[^>]*>(.*?)</h1>", html, re.S)[-1]


def test_channel_pages_in_chinese_and_english() -> None:
    channel = Channel.objects.create(name="c1", type=1, key="k", models="m")
    client = Client()
    client.force_login(make_user("polyglot", role=ROLE_ROOT))
    change = f"/admin/relay/channel/{channel.pk}/change/"

    zh = client.get(change, HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert "渠道与转发" in _crumbs(zh) and "渠道" in _crumbs(zh).replace("渠道与转发", "")
    assert _h1(zh) == "修改 渠道"
    assert (
        _h1(client.get("/admin/relay/channel/add/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode())
        == "增加 渠道"
    )
    listing = client.get("/admin/relay/channel/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert _h1(listing) == "渠道" and "Channels" not in _crumbs(listing)

    en = client.get(change, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Channels and relay" in _crumbs(en) and " Channels " in _crumbs(en)
    assert _h1(en) == "Change channel"
    assert "渠道" not in en


def test_redemption_and_token_headings_in_chinese() -> None:
    client = Client()
    client.force_login(make_user("zhreader", role=ROLE_ROOT))
    codes = client.get("/admin/billing/redemption/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert _h1(codes) == "兑换码" and "计费" in _crumbs(codes)
    tokens = client.get("/admin/accounts/token/add/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    assert _h1(tokens) == "增加 令牌" and "账户" in _crumbs(tokens)
    assert "New API 控制台" in tokens
    index = client.get("/admin/", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()
    for name in ("用户", "令牌", "渠道", "日志", "兑换码", "充值记录", "Midjourney 任务", "绘图与音乐任务"):
        assert name in index, name


def test_every_model_and_app_of_ours_has_a_chinese_name() -> None:
    """A model added without translated names would show English in the Chinese admin."""
    for label in OUR_APPS:
        config = apps.get_app_config(label)
        with translation.override("zh-hans"):
            names = [str(config.verbose_name)] + [
                str(name)
                for model in config.get_models()
                for name in (model._meta.verbose_name, model._meta.verbose_name_plural)
            ]
        for name in names:
            assert re.search(r"[\u4e00-\u9fff]", name), f"{label}: {name!r} has no Chinese name"
    registered = {m._meta.app_label for m in admin.site._registry}
    assert set(OUR_APPS) <= registered
