"""Pages show the services' refusals and the token form in the reader's language; /api keeps New API's words."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import Token, User
from tests.api_client import Api
from tests.conftest import make_token

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def _signed_in(user: User) -> Client:
    client = Client()
    answer = client.post("/login", {"username": user.username, "password": f"{user.username}-password"})
    assert answer.status_code == 302
    return client


def _notice(client: Client, path: str, form: dict[str, str], headers: dict[str, str]) -> str:
    """The page's message after posting `form` (following the redirect back, if any)."""
    html = client.post(path, form, follow=True, **headers).content.decode()
    found = re.findall(
        r'<(?:p|div|li)[^>]*class="[^"]*(?:error|notice|message)[^"]*"[^>]*>(.*?)</', html, re.S
    )
    return " ".join(found) or html


def test_token_form_labels_in_chinese(alice: User) -> None:
    make_token(alice, name="budgeted", unlimited_quota=False, budget_period="week", budget_quota=9)
    client = _signed_in(alice)
    html = client.get("/token", **ZH).content.decode()
    for label in (
        "额度（额度单位）",
        "无限额度",
        "周期预算",
        "每周期预算（额度单位）",
        "每天",
        "每周",
        "每月",
        "过期时间（UTC，留空为永不过期）",
        "限制模型",
        "允许的模型（逗号分隔）",
        "IP 白名单（每行一个 IP 或 CIDR）",
        "分组",
        "剩余额度",
    ):
        assert label in html, label
    for english in ("Periodic budget", "Budget per period", "Weekly", "Unlimited quota", "IP allow list"):
        assert english not in html, english
    edit = client.get(f"/token?edit={Token.objects.get(name='budgeted').pk}", **ZH).content.decode()
    assert '<option value="week" selected>每周</option>' in edit
    english = client.get("/token", **EN).content.decode()
    assert "Periodic budget" in english and "Default group" in english and "默认分组" not in english


def test_token_refusals_with_values_in_the_readers_language(alice: User) -> None:
    client = _signed_in(alice)
    bad_ip = {"action": "create", "name": "t", "remain_quota": "1", "allow_ips": "300.1.1.1"}
    assert "Not an IP address or CIDR range: 300.1.1.1" in _notice(client, "/token", bad_ip, EN)
    assert "IP 白名单格式错误：300.1.1.1" in _notice(client, "/token", bad_ip, ZH)
    bad_group = {"action": "create", "name": "t", "remain_quota": "1", "group": "nope"}
    assert "Group nope is not available" in _notice(client, "/token", bad_group, EN)
    assert "分组 nope 不可用" in _notice(client, "/token", bad_group, ZH)
    assert not Token.objects.filter(user_id=alice.pk).exists()
    # /api answers in New API's words, whatever the reader's language
    api = Api(alice).post("/api/token/", {"name": "t", "allow_ips": "300.1.1.1"})
    assert api == {"success": False, "message": "IP 白名单格式错误：300.1.1.1"}


def test_setting_and_topup_refusals_in_the_readers_language(alice: User) -> None:
    client = _signed_in(alice)
    transfer = _notice(client, "/setting", {"action": "aff_transfer", "quota": "10"}, EN)
    assert "The smallest transfer is $1.00 (500000 units)" in transfer
    assert "转移额度最小为 $1.00（500000）" in _notice(
        client, "/setting", {"action": "aff_transfer", "quota": "10"}, ZH
    )
    hook = {
        "action": "notification",
        "notify_type": "webhook",
        "quota_warning_threshold": "5",
        "webhook_url": "x",
    }
    assert "Invalid webhook URL" in _notice(client, "/setting", hook, EN)
    assert "Enter the amount as a whole number" in _notice(
        client, "/topup", {"action": "price", "amount": "x"}, EN
    )
    assert "The amount must be at least 1" in _notice(
        client, "/topup", {"action": "price", "amount": "0"}, EN
    )
    assert "充值数量不能小于 1" in _notice(client, "/topup", {"action": "price", "amount": "0"}, ZH)


def test_register_refusals_in_the_readers_language() -> None:
    client = Client()
    code = _notice(client, "/register", {"action": "send_code", "email": "x@example.com"}, EN)
    assert "Email is not configured on this server" in code
    assert "SMTP 服务器未配置" in _notice(
        client, "/register", {"action": "send_code", "email": "x@example.com"}, ZH
    )
    emoji = "\U0001f600" * 19  # 19 characters, 76 bytes: past bcrypt's 72
    long = {"username": "carol", "password": emoji, "password2": emoji}
    assert "The password cannot be longer than 72 bytes" in _notice(client, "/register", long, EN)
    assert "密码不能超过 72 字节" in _notice(client, "/register", long, ZH)
    assert not User.objects.filter(username="carol").exists()
