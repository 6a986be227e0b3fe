"""The console in a real browser against the real gateway: register → sign in → key → chat → log,
redeem, the playground's stream, both languages, and no console errors on any page."""

from __future__ import annotations

import re

import openai
import pytest
from playwright.sync_api import Page, expect

from accounts.models import User
from billing.models import LOG_CONSUME, Log, Redemption
from newapi_site.roles import ROLE_ROOT
from tests.conftest import live, make_channel, make_user, settle
from tests.fakes.openai_upstream import STREAM_WORDS

from .conftest import shot

pytestmark = live
REPLY = "".join(STREAM_WORDS)


def sign_in(page: Page, base: str, username: str, password: str) -> None:
    page.goto(f"{base}/login")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator(".who")).to_contain_text(f"Signed in as {username}")


def test_register_key_chat_log_redeem(gateway, fake_upstream, page: Page, console_errors: list[str]) -> None:
    make_channel(fake_upstream.base_url, key="browser-flow")
    base = gateway.url
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)

    # Register, then sign in: the first signed-in page names the person.
    page.goto(f"{base}/register")
    shot(page, "register")
    page.get_by_label("Username", exact=True).fill("walker")
    page.get_by_label("Password (8–20 characters)").fill("walker-pass-1")
    page.get_by_label("Password again").fill("walker-pass-1")
    page.get_by_role("button", name="Register").last.click()
    expect(page).to_have_url(re.compile(r"/login$"))
    sign_in(page, base, "walker", "walker-pass-1")
    user = User.objects.get(username="walker")

    # Create a token and copy its key from the list.
    page.goto(f"{base}/token")
    page.get_by_label("Name", exact=True).fill("from-the-browser")
    page.get_by_role("button", name="Create token").click()
    row = page.locator("tr", has_text="from-the-browser")
    expect(row).to_be_visible()
    row.get_by_text("Show").click()
    row.get_by_role("button", name="Copy").click()
    key = page.evaluate("navigator.clipboard.readText()")
    assert re.fullmatch(r"sk-[A-Za-z0-9]{48}", key), key
    shot(page, "tokens")

    # Redeem a code (a new account starts at 0): the balance rises by exactly its quota.
    Redemption.objects.create(user_id=1, key="browser-code-1", quota=250_000, name="gift")
    page.goto(f"{base}/topup")
    balance = int(page.locator("#balance").get_attribute("data-balance") or 0)
    page.get_by_label("Redemption code").fill("browser-code-1")
    page.get_by_role("button", name="Redeem", exact=True).click()
    expect(page.locator("#balance")).to_have_attribute("data-balance", str(balance + 250_000))
    assert User.objects.get(pk=user.pk).quota == balance + 250_000

    # A chat through the openai SDK with that key is billed to the person and shows on /log.
    before = User.objects.get(pk=user.pk).quota
    client = openai.OpenAI(base_url=gateway.v1, api_key=key, max_retries=0)
    answer = client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == REPLY
    settle()
    logged = Log.objects.get(user_id=user.pk, type=LOG_CONSUME)
    assert logged.quota > 0
    assert before - User.objects.get(pk=user.pk).quota == logged.quota
    page.goto(f"{base}/log")
    rows = page.locator("tr.log-row", has_text="gpt-4o-mini")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("from-the-browser")
    expect(page.locator("[data-total-quota]")).to_have_attribute("data-total-quota", str(logged.quota))
    shot(page, "logs")

    page.goto(f"{base}/detail")
    expect(page.locator(".chart svg")).to_have_count(3)
    shot(page, "dashboard")
    assert console_errors == []


def test_playground_streams_a_reply(gateway, fake_upstream, page: Page, console_errors: list[str]) -> None:
    make_channel(fake_upstream.base_url, key="browser-playground")
    make_user("player", quota=5_000_000)
    sign_in(page, gateway.url, "player", "player-password")
    page.goto(f"{gateway.url}/playground")
    page.get_by_label("Model").select_option("gpt-4o-mini")
    page.get_by_label("Message").fill("Say hello")
    page.get_by_role("button", name="Send").click()
    done = page.locator('.turn-assistant[data-done="1"] .text')
    expect(done).to_have_text(REPLY)
    shot(page, "playground")
    settle()
    row = Log.objects.get(username="player", type=LOG_CONSUME)
    assert row.token_name.startswith("playground-") and row.is_stream
    assert console_errors == []


def test_chinese_by_browser_language_and_the_switcher(gateway, browser, page: Page) -> None:
    context = browser.new_context(locale="zh-CN")
    zh = context.new_page()
    zh.goto(f"{gateway.url}/login")
    expect(zh.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(zh.get_by_label("用户名或邮箱")).to_be_visible()
    shot(zh, "login-zh")
    context.close()

    page.goto(f"{gateway.url}/about")
    expect(page.locator("html")).to_have_attribute("lang", "en")
    page.get_by_label("Language").select_option("zh-hans")
    page.get_by_role("button", name="Switch").click()
    expect(page.locator("h1")).to_have_text("关于")
    page.goto(f"{gateway.url}/pricing")  # remembered on the next page
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    expect(page.locator("h1")).to_have_text("模型价格")


PAGES = [
    "/",
    "/about",
    "/pricing",
    "/register",
    "/reset",
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


@pytest.mark.parametrize("width", [1280, 390])
def test_every_page_opens_without_console_errors(
    gateway, page: Page, console_errors: list[str], width: int
) -> None:
    make_user("visitor")
    page.set_viewport_size({"width": width, "height": 800})
    sign_in(page, gateway.url, "visitor", "visitor-password")
    for path in PAGES:
        answer = page.goto(f"{gateway.url}{path}")
        assert answer is not None and answer.status == 200, path
        expect(page.locator("h1")).to_be_visible()
        # Nothing wider than a phone's screen except inside scrolling tables.
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth"
        )
        assert overflow <= 0, (path, width, overflow)
    assert console_errors == []


def test_admin_dashboard_draws_its_charts(gateway, page: Page, console_errors: list[str]) -> None:
    make_user("chief", role=ROLE_ROOT)
    page.goto(f"{gateway.url}/admin/login/?next=/admin/")
    page.locator("#id_username").fill("chief")
    page.locator("#id_password").fill("chief-password")
    page.locator("input[type=submit]").click()
    charts = page.locator("svg.bar-chart")
    expect(charts).to_have_count(7)
    assert charts.first.bounding_box()["width"] > 200  # drawn at a readable size
    shot(page, "admin-dashboard")
    assert console_errors == []


def test_channel_editor_explains_the_fields_of_each_type(
    gateway, page: Page, console_errors: list[str]
) -> None:
    make_user("wrench", role=ROLE_ROOT)
    page.goto(f"{gateway.url}/admin/login/?next=/admin/relay/channel/add/")
    page.locator("#id_username").fill("wrench")
    page.locator("#id_password").fill("wrench-password")
    page.locator("input[type=submit]").click()
    page.locator("#id_type").select_option("3")  # Azure
    expect(page.locator("#channel-help-other")).to_contain_text("API version")
    expect(page.locator("#channel-help-base_url")).to_contain_text("openai.azure.com")
    page.locator("#id_type").select_option("33")  # AWS: the secrets live in the key, no base URL
    expect(page.locator("#channel-help-key")).to_contain_text("AccessKeyId|SecretAccessKey|region")
    expect(page.locator("#id_base_url")).to_be_hidden()
    page.locator("#id_type").select_option("41")  # Vertex AI
    expect(page.locator("#channel-help-key")).to_contain_text("service-account JSON")
    expect(page.locator("#channel-help-other")).to_contain_text("Region")
    assert console_errors == []


def test_channel_editor_fetches_models_and_tests(
    gateway, fake_upstream, page: Page, console_errors: list[str]
) -> None:
    channel = make_channel(fake_upstream.base_url, key="editor-key", models="text-embedding-3-small")
    make_user("fixer", role=ROLE_ROOT)
    page.goto(f"{gateway.url}/admin/login/?next=/admin/relay/channel/{channel.pk}/change/")
    page.locator("#id_username").fill("fixer")
    page.locator("#id_password").fill("fixer-password")
    page.locator("input[type=submit]").click()
    # The key is write-only (empty in the form): the stored one is used, at the stored address.
    page.locator("#channel-fetch-models").click()
    offered = page.locator("#channel-upstream-models option")
    expect(offered.first).to_be_attached()
    assert offered.all_text_contents() == ["gpt-4o-mini"]  # the fake upstream's list
    page.locator("#channel-add-models").click()
    assert page.locator("#id_models").input_value() == "text-embedding-3-small,gpt-4o-mini"
    page.locator("#id_test_model").fill("gpt-4o-mini")
    page.locator("#channel-test").click()
    expect(page.locator("#channel-test-result")).to_contain_text(re.compile(r"Works: answered in \d+ ms"))
    channel.refresh_from_db()
    assert channel.test_time > 0
    assert console_errors == []
