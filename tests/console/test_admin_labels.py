"""The admin's field labels, column headers, actions, filters and choices in the reader's language."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.apps import apps
from django.contrib import admin
from django.test import Client
from django.utils import translation
from django.utils.functional import Promise

from accounts.models import TOKEN_DISABLED
from newapi_site.roles import ROLE_ROOT
from relay.models import CHANNEL_AUTO_DISABLED, Channel
from tests.conftest import make_token, make_user

pytestmark = pytest.mark.django_db
OUR_APPS = ("accounts", "relay", "billing", "tasks")
CJK = re.compile(r"[\u4e00-\u9fff]")


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def _results(html: str) -> str:
    found = re.search(r'<table id="result_list">(.*?)</table>', html, re.S)
    assert found, html[:500]
    return found.group(1)


def _headers(html: str) -> list[str]:
    cells = re.findall(r'<th scope="col"[^>]*>(.*?)</th>', _results(html), re.S)
    return [re.sub(r"^\d+ ", "", _text(h)) for h in cells]  # without a sorted column's priority digit


def _actions(html: str) -> list[str]:
    select = re.search(r'<select name="action"[^>]*>(.*?)</select>', html, re.S)
    assert select, html[:500]
    return [_text(o) for o in re.findall(r'<option value="[^"]+"[^>]*>(.*?)</option>', select.group(1), re.S)]


def _labels(html: str) -> dict[str, str]:
    found = re.findall(r'<label[^>]*for="id_(\w+)"[^>]*>(.*?)</label>', html, re.S)
    return {name: _text(text).rstrip(":：") for name, text in found}


def _fieldsets(html: str) -> list[str]:
    return [_text(h) for h in re.findall(r'<h2[^>]*class="fieldset-heading"[^>]*>(.*?)</h2>', html, re.S)]


def _filters(html: str) -> str:
    found = re.search(r'<nav id="changelist-filter"(.*?)</nav>', html, re.S)
    assert found, "no filter sidebar"
    return _text(found.group(1))


@pytest.fixture
def root_client() -> Client:
    client = Client()
    client.force_login(make_user("labelroot", role=ROLE_ROOT))
    return client


def _get(client: Client, url: str, language: str) -> str:
    response = client.get(url, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200, url
    return response.content.decode()


def test_channel_list_in_chinese_and_english(root_client: Client) -> None:
    Channel.objects.create(name="c1", type=1, key="k", models="m", status=CHANNEL_AUTO_DISABLED)
    zh = _get(root_client, "/admin/relay/channel/", "zh-CN")
    headers = _headers(zh)
    for name in ("名称", "类型", "状态", "模型", "分组", "优先级", "权重", "已用额度", "余额", "密钥"):
        assert name in headers, (name, headers)
    assert "响应时间（毫秒）" in headers
    actions = _actions(zh)
    for name in ("启用所选渠道", "禁用所选渠道", "测试所选渠道", "启用所选多密钥渠道的全部密钥"):
        assert name in actions, (name, actions)
    sidebar = _filters(zh)
    assert "以 类型" in sidebar and "以 状态" in sidebar and "以 分组" in sidebar and "以 标签" in sidebar
    assert "已手动禁用" in sidebar and "已自动禁用" in sidebar
    assert "已自动禁用" in _text(_results(zh))  # the row's status cell

    en = _get(root_client, "/admin/relay/channel/", "en")
    headers = _headers(en)
    for name in ("Name", "Type", "Status", "Models", "Group", "Priority", "Weight", "Used quota", "Key"):
        assert name in headers, (name, headers)
    assert {"Enable selected channels", "Test selected channels"} <= set(_actions(en))
    assert "By type" in _filters(en) and "Disabled (automatically)" not in headers
    assert not CJK.search(_text(en.split("<body", 1)[1]))


def test_token_list_in_chinese_and_english(root_client: Client) -> None:
    owner = make_user("tokenowner")
    make_token(owner, name="t1", status=TOKEN_DISABLED)
    zh = _get(root_client, "/admin/accounts/token/", "zh-CN")
    headers = _headers(zh)
    for name in ("名称", "用户", "密钥", "状态", "剩余额度", "无限额度", "已用额度", "过期时间", "分组"):
        assert name in headers, (name, headers)
    assert {"启用所选令牌", "禁用所选令牌"} <= set(_actions(zh))
    sidebar = _filters(zh)
    assert (
        "以 状态" in sidebar and "已耗尽" in sidebar and "以 已删除" in sidebar and "以 无限额度" in sidebar
    )
    rows = _text(_results(zh))
    assert "已禁用" in rows and "永不过期" in rows
    assert "令牌名称，或完整的密钥（sk-…）。" in zh

    en = _get(root_client, "/admin/accounts/token/", "en")
    headers = _headers(en)
    for name in ("Name", "User", "Key", "Status", "Remaining quota", "Unlimited quota", "Expires", "Group"):
        assert name in headers, (name, headers)
    assert {"Enable selected tokens", "Disable selected tokens"} <= set(_actions(en))
    assert "never" in _text(_results(en))
    assert not CJK.search(_text(en.split("<body", 1)[1]))


def test_change_forms_label_fields_in_the_readers_language(root_client: Client) -> None:
    channel = Channel.objects.create(name="c1", type=1, key="sk-upstream-key-0123456789", models="m")
    url = f"/admin/relay/channel/{channel.pk}/change/"
    zh = _get(root_client, url, "zh-CN")
    labels = _labels(zh)
    expected = {
        "name": "名称",
        "type": "类型",
        "key": "密钥",
        "base_url": "接口地址",
        "status": "状态",
        "models": "模型",
        "group": "分组",
        "priority": "优先级",
        "weight": "权重",
        "tag": "标签",
        "model_mapping": "模型重定向",
        "status_code_mapping": "状态码复写",
        "auto_ban": "自动禁用",
    }
    for field, name in expected.items():
        assert labels.get(field) == name, (field, labels.get(field))
    assert {"路由", "请求改写", "统计", "渠道能力"} <= set(_fieldsets(zh))
    assert "只写。留空则保留当前密钥。" in zh and "创建时间" in zh and "已启用" in zh

    en = _get(root_client, url, "en")
    labels = _labels(en)
    assert labels["name"] == "Name" and labels["key"] == "Key" and labels["model_mapping"] == "Model mapping"
    assert {"Routing", "Request rewriting", "Statistics"} <= set(_fieldsets(en))
    assert "Write-only. Leave empty to keep the current key." in en

    token = make_token(make_user("formowner"), name="t1")
    zh = _get(root_client, f"/admin/accounts/token/{token.pk}/change/", "zh-CN")
    labels = _labels(zh)
    for field, name in {
        "name": "名称",
        "status": "状态",
        "expired_time": "过期时间",
        "remain_quota": "剩余额度",
        "unlimited_quota": "无限额度",
        "budget_period": "预算周期",
        "model_limits": "模型限制",
        "allow_ips": "IP 白名单",
        "group": "分组",
    }.items():
        assert labels.get(field) == name, (field, labels.get(field))
    assert {"额度", "限制", "历史"} <= set(_fieldsets(zh))
    assert ">每天<" in zh  # the budget period's choices
    en = _get(root_client, f"/admin/accounts/token/{token.pk}/change/", "en")
    assert _labels(en)["remain_quota"] == "Remaining quota" and ">Daily<" in en


def _ours() -> list[Any]:
    return [model for label in OUR_APPS for model in apps.get_app_config(label).get_models()]


def test_every_field_of_ours_has_a_translated_name() -> None:
    """A field added without a translatable verbose_name (or without its zh entry) fails here."""
    missing = []
    for model in _ours():
        for field in model._meta.concrete_fields:
            if field.auto_created:
                continue  # the implicit "ID" column
            name = field.verbose_name
            with translation.override("zh-hans"):
                zh = str(name)
            if not isinstance(name, Promise) or not CJK.search(zh):
                missing.append(f"{model._meta.label}.{field.name}: {zh!r}")
            for _value, label in field.choices or ():
                with translation.override("zh-hans"):
                    if not CJK.search(str(label)):
                        missing.append(f"{model._meta.label}.{field.name} choice {label!r}")
    assert not missing, missing


def test_every_column_action_and_filter_of_ours_has_a_chinese_name() -> None:
    missing = []
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in OUR_APPS:
            continue
        names: list[tuple[str, Any]] = []
        for entry in model_admin.list_display:
            method = getattr(model_admin, entry, None)
            if method is not None and hasattr(method, "short_description"):
                names.append((f"column {entry}", method.short_description))
        for _func, action, description in model_admin._get_base_actions():
            if action != "delete_selected":  # Django's own, translated by Django
                names.append((f"action {action}", description))
        for entry in model_admin.list_filter:
            if isinstance(entry, type):
                names.append((f"filter {entry.__name__}", entry.title))
        for kind, name in names:
            with translation.override("zh-hans"):
                if not CJK.search(str(name)):
                    missing.append(f"{model._meta.label} {kind}: {name!r}")
    assert not missing, missing
