"""The console pages through Django's test client: sign-in rules, the same services as /api, CSRF, languages."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from accounts.models import TOKEN_DISABLED, Token, User
from billing.models import Redemption, TopUp
from billing.services.epay import epay_sign
from newapi_site.options import update_option
from newapi_site.roles import ROLE_ADMIN
from tasks.models import Midjourney, Task
from tests.conftest import make_token, make_user

pytestmark = pytest.mark.django_db

SIGNED_IN_PAGES = [
    "/detail",
    "/token",
    "/log",
    "/topup",
    "/setting",
    "/playground",
    "/midjourney",
    "/task",
    "/chat2link",
]
PUBLIC_PAGES = ["/", "/login", "/register", "/reset", "/user/reset", "/pricing", "/about"]


def signed_in(user: User) -> Client:
    client = Client()
    page = client.get("/login")
    assert page.status_code == 200
    answer = client.post("/login", {"username": user.username, "password": f"{user.username}-password"})
    assert answer.status_code == 302, answer.content[:500]
    return client


@pytest.mark.parametrize("path", SIGNED_IN_PAGES)
def test_signed_out_visit_goes_to_login(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 302
    assert answer["Location"] == f"/login?next={path.replace('/', '%2F')}"


@pytest.mark.parametrize("path", PUBLIC_PAGES)
def test_public_pages_open_and_label_every_input(client: Client, path: str) -> None:
    answer = client.get(path)
    assert answer.status_code == 200
    html = answer.content.decode()
    assert '<html lang="en">' in html
    _assert_labelled(html)


def _assert_labelled(html: str) -> None:
    """Every visible input, select and textarea has a <label for=...> naming its id."""
    labels = set(re.findall(r'<label[^>]*for="([^"]+)"', html))
    for tag in re.findall(r"<(?:input|select|textarea)\b[^>]*>", html):
        if 'type="hidden"' in tag:
            continue
        found = re.search(r'id="([^"]+)"', tag)
        assert found and found.group(1) in labels, tag


def test_login_lands_on_signed_in_page_with_username(alice: User) -> None:
    client = Client()
    answer = client.post("/login", {"username": "alice", "password": "alice-password", "next": "/token"})
    assert answer["Location"] == "/token"
    page = client.get("/token").content.decode()
    assert "Signed in as alice" in page
    for path in SIGNED_IN_PAGES:
        html = client.get(path, follow=True).content.decode()
        _assert_labelled(html)


def test_wrong_password_is_refused_with_the_api_message(alice: User, client: Client) -> None:
    answer = client.post("/login", {"username": "alice", "password": "nope-nope"})
    assert answer.status_code == 200
    assert "Wrong username or password" in answer.content.decode()
    in_chinese = client.post(
        "/login", {"username": "alice", "password": "nope-nope"}, HTTP_ACCEPT_LANGUAGE="zh-CN"
    )
    assert "用户名或密码错误，或用户已被封禁" in in_chinese.content.decode()  # the service's own words
    assert client.get("/detail").status_code == 302


def test_the_same_session_serves_the_api(alice: User) -> None:
    client = signed_in(alice)
    answer = client.get("/api/user/self", HTTP_NEW_API_USER=str(alice.pk))
    assert answer.json()["data"]["username"] == "alice"


def test_register_uses_the_api_rules(client: Client, alice: User) -> None:
    fields = {"username": "carol", "password": "carol-password", "password2": "carol-password"}
    answer = client.post("/register", {**fields, "aff_code": alice.aff_code or ""})
    assert answer.status_code == 302 and answer["Location"] == "/login"
    assert User.objects.filter(username="carol").exists()
    again = client.post("/register", fields)  # the service refuses a taken name
    assert "This username is taken" in again.content.decode()
    short = client.post("/register", {"username": "dave", "password": "short", "password2": "short"})
    assert short.status_code == 200 and not User.objects.filter(username="dave").exists()


def test_tokens_create_edit_disable_delete(alice: User) -> None:
    client = signed_in(alice)
    client.post(
        "/token",
        {
            "action": "create",
            "name": "web",
            "remain_quota": "1234",
            "expired_time": "",
            "allow_ips": "10.0.0.1",
        },
    )
    token = Token.objects.get(user_id=alice.pk, name="web")
    assert (token.remain_quota, token.unlimited_quota, token.expired_time, token.allow_ips) == (
        1234,
        False,
        -1,
        "10.0.0.1",
    )
    page = client.get("/token").content.decode()
    assert f"sk-{token.key}" in page
    client.post(
        "/token",
        {
            "action": "update",
            "id": token.pk,
            "name": "web2",
            "remain_quota": "99",
            "unlimited_quota": "on",
            "expired_time": "2999-01-01T00:00",
        },
    )
    token.refresh_from_db()
    assert (token.name, token.unlimited_quota, token.remain_quota) == ("web2", True, 99)
    client.post("/token", {"action": "disable", "id": token.pk})
    token.refresh_from_db()
    assert token.status == TOKEN_DISABLED
    bad = client.post(
        "/token", {"action": "update", "id": token.pk, "name": "x", "allow_ips": "not-an-ip"}, follow=True
    )
    assert "Not an IP address or CIDR range: not-an-ip" in bad.content.decode()
    client.post("/token", {"action": "delete", "id": token.pk})
    assert not Token.live.filter(pk=token.pk).exists()


def test_someone_elses_token_is_out_of_reach(alice: User, bob: User) -> None:
    theirs = make_token(bob, name="bobs")
    client = signed_in(alice)
    answer = client.post("/token", {"action": "delete", "id": theirs.pk}, follow=True)
    assert "No such token" in answer.content.decode()
    assert Token.live.filter(pk=theirs.pk).exists()


def test_redeem_raises_the_balance_once(alice: User) -> None:
    Redemption.objects.create(user_id=alice.pk, key="code-abc", quota=777, name="gift")
    client = signed_in(alice)
    before = User.objects.get(pk=alice.pk).quota
    client.post("/topup", {"action": "redeem", "key": "code-abc"})
    assert User.objects.get(pk=alice.pk).quota == before + 777
    again = client.post("/topup", {"action": "redeem", "key": "code-abc"}, follow=True)
    assert "This code has already been used" in again.content.decode()
    assert User.objects.get(pk=alice.pk).quota == before + 777


def test_forms_need_the_csrf_token(alice: User) -> None:
    client = Client(enforce_csrf_checks=True)
    assert client.post("/login", {"username": "alice", "password": "alice-password"}).status_code == 403
    page = client.get("/login").content.decode()
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    answer = client.post(
        "/login", {"username": "alice", "password": "alice-password", "csrfmiddlewaretoken": csrf}
    )
    assert answer.status_code == 302


def test_chinese_by_accept_language_and_the_switcher(client: Client) -> None:
    zh = client.get("/login", HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9").content.decode()
    assert '<html lang="zh-hans">' in zh and "用户名或邮箱" in zh
    client.post("/i18n/setlang/", {"language": "zh-hans", "next": "/about"})
    assert "关于" in client.get("/about").content.decode()  # remembered without Accept-Language
    client.post("/i18n/setlang/", {"language": "en", "next": "/about"})
    assert '<html lang="en">' in client.get("/about", HTTP_ACCEPT_LANGUAGE="zh-CN").content.decode()


def test_password_change_ends_other_sessions(alice: User) -> None:
    first, second = signed_in(alice), signed_in(alice)
    first.post(
        "/setting",
        {
            "action": "password",
            "original_password": "alice-password",
            "password": "alice-new-pass",
            "password2": "alice-new-pass",
        },
    )
    assert first.get("/setting").status_code == 200
    assert second.get("/setting").status_code == 302


def test_user_reset_page_needs_a_valid_link(client: Client) -> None:
    make_user("erin", email="erin@example.com")
    answer = client.post("/user/reset", {"email": "erin@example.com", "token": "forged"})
    assert "The reset link is invalid or has expired" in answer.content.decode()


def test_staff_sign_in_once_for_console_and_admin(alice: User) -> None:
    chief = make_user("chiefadm", role=ROLE_ADMIN)
    client = signed_in(chief)
    assert client.get("/admin/").status_code == 200
    client.post(
        "/setting",
        {
            "action": "password",
            "original_password": "chiefadm-password",
            "password": "chief-new-pass1",
            "password2": "chief-new-pass1",
        },
    )
    assert client.get("/admin/").status_code == 200 and client.get("/setting").status_code == 200
    client.post("/logout")
    assert client.get("/admin/").status_code == 302 and client.get("/setting").status_code == 302
    common = signed_in(alice)
    assert common.get("/admin/").status_code == 302  # not staff: the admin still asks to sign in


def test_topup_online_price_and_pay_form(alice: User) -> None:
    update_option("PayAddress", "https://pay.example.com")
    update_option("EpayId", "1001")
    update_option("EpayKey", "epay-secret")
    client = signed_in(alice)
    priced = client.post("/topup", {"action": "price", "amount": "10"}).content.decode()
    assert re.search(r'id="tp-price">73.00<', priced)
    form = client.post("/topup", {"action": "pay", "amount": "10", "payment_method": "zfb"}).content.decode()
    assert 'action="https://pay.example.com/submit.php"' in form
    epay_form = form[form.index('id="epay-form"') : form.index("</form>", form.index('id="epay-form"'))]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', epay_form))
    assert fields["money"] == "73.00" and fields["type"] == "alipay"
    assert fields["return_url"].endswith("/log")
    assert fields["sign"] == epay_sign(
        {k: v for k, v in fields.items() if k not in ("sign", "sign_type")}, "epay-secret"
    )
    assert TopUp.objects.get(trade_no=fields["out_trade_no"]).user_id == alice.pk
    low = client.post("/topup", {"action": "price", "amount": "0"}).content.decode()
    assert "The amount must be at least 1" in low


def test_own_drawing_and_music_tasks_with_their_media(alice: User, bob: User) -> None:
    Midjourney.objects.create(
        user_id=alice.pk,
        mj_id="mj-alice",
        action="IMAGINE",
        prompt="a cat",
        image_url="https://img.example/cat.png",
        status="SUCCESS",
    )
    Midjourney.objects.create(user_id=bob.pk, mj_id="mj-bob", action="IMAGINE", prompt="a dog")
    Task.objects.create(
        user_id=alice.pk,
        task_id="suno-alice",
        platform="suno",
        action="MUSIC",
        status="SUCCESS",
        data=[{"audio_url": "https://cdn.example/a.mp3", "image_url": "https://cdn.example/a.jpg"}],
    )
    Task.objects.create(user_id=bob.pk, task_id="suno-bob", platform="suno")
    client = signed_in(alice)
    drawings = client.get("/midjourney").content.decode()
    assert "mj-alice" in drawings and "mj-bob" not in drawings
    # The image as /api shows it: the upstream's URL, or ours when MjForwardUrlEnabled.
    assert re.search(r'<img src="[^"]*(cat\.png|/mj/image/mj-alice)"', drawings), drawings[-3000:]
    music = client.get("/task").content.decode()
    assert "suno-alice" in music and '<audio controls preload="none" src="https://cdn.example/a.mp3"' in music
    assert "suno-bob" not in music
    assert "mj-alice" not in client.get("/midjourney", {"mj_id": "other"}).content.decode()
