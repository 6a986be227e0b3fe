"""/register with an emailed verification code (a real SMTP server on 127.0.0.1), and Turnstile on
/login and /register (a real fake of Cloudflare's siteverify): the pages' forms, posted."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from accounts.models import User
from newapi_site.options import update_option
from tests.conftest import free_port
from tests.fakes.turnstile import FakeTurnstile

pytestmark = pytest.mark.django_db
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler hook
        self.messages.append(envelope)
        return "250 OK"

    def code_for(self, address: str) -> str:
        sent = [m for m in self.messages if address in m.rcpt_tos]
        assert sent, f"no mail to {address}"
        body = email.message_from_bytes(sent[-1].content).get_payload(decode=True).decode()
        found = re.search(r"<strong>(\w+)</strong>", body)
        assert found, body
        return found.group(1)


@pytest.fixture(scope="module")
def smtp() -> Iterator[tuple[Controller, Inbox]]:
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


@pytest.fixture
def verification_on(smtp: tuple[Controller, Inbox], settings) -> Inbox:
    controller, inbox = smtp
    # The gateway's own SMTP sending, not the test runner's in-memory outbox.
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    update_option("SMTPServer", "127.0.0.1")
    update_option("SMTPPort", str(controller.port))
    update_option("SMTPAccount", "gateway@example.test")
    update_option("SMTPToken", "")
    update_option("EmailVerificationEnabled", "true")
    inbox.messages.clear()
    return inbox


@pytest.fixture(scope="module")
def verifier() -> FakeTurnstile:
    return FakeTurnstile().start()


@pytest.fixture
def turnstile_on(settings, verifier: FakeTurnstile) -> FakeTurnstile:
    settings.TURNSTILE_VERIFY_URL = verifier.url
    verifier.forms.clear()
    update_option("TurnstileSiteKey", "page-site-key")
    update_option("TurnstileSecretKey", "page-secret")
    update_option("TurnstileCheckEnabled", "true")
    return verifier


def _messages(answer: Any) -> str:
    return " ".join(re.findall(r'<li class="[^"]*">(.*?)</li>', answer.content.decode(), re.S))


def test_register_with_the_mailed_code(verification_on: Inbox) -> None:
    client = Client()
    form = client.get("/register").content.decode()
    assert 'name="email"' in form and 'name="verification_code"' in form
    sent = client.post("/register", {"action": "send_code", "email": "dave@example.com", "username": "dave"})
    assert "A verification code was sent to your email" in _messages(sent)
    assert 'value="dave@example.com"' in sent.content.decode()  # the form keeps what was typed
    code = verification_on.code_for("dave@example.com")
    fields = {"username": "dave", "password": "dave-password", "password2": "dave-password"}
    fields["email"] = "dave@example.com"
    wrong = client.post("/register", {**fields, "verification_code": "0" * len(code)})
    assert "The verification code is wrong or has expired" in _messages(wrong)
    missing = client.post("/register", {**fields, "email": "", "verification_code": code})
    assert "The verification code is wrong or has expired" in _messages(missing)
    assert not User.objects.filter(username="dave").exists()
    done = client.post("/register", {**fields, "verification_code": code})
    assert done.status_code == 302 and done["Location"] == "/login"
    assert User.objects.get(username="dave").email == "dave@example.com"
    signed_in = client.post("/login", {"username": "dave", "password": "dave-password"})
    assert signed_in.status_code == 302
    again = Client().post("/register", {"action": "send_code", "email": "dave@example.com"}, **ZH)
    assert "邮箱地址已被占用" in _messages(again)  # the address is taken now
    assert len([m for m in verification_on.messages if "dave@example.com" in m.rcpt_tos]) == 1


def test_without_verification_the_form_asks_no_email(db) -> None:
    update_option("EmailVerificationEnabled", "false")
    assert 'name="verification_code"' not in Client().get("/register").content.decode()


def test_login_page_needs_turnstile_once_per_session(alice: User, turnstile_on: FakeTurnstile) -> None:
    client = Client(REMOTE_ADDR="10.78.0.1")
    page = client.get("/login").content.decode()
    assert 'class="cf-turnstile" data-sitekey="page-site-key"' in page
    credentials = {"username": "alice", "password": "alice-password"}
    empty = client.post("/login", credentials)
    assert empty.status_code == 200 and "Complete the Turnstile check first" in _messages(empty)
    assert turnstile_on.forms == []  # nothing to verify
    bad = client.post("/login", {**credentials, "cf-turnstile-response": "bad-token"}, **ZH)
    assert "Turnstile 校验失败，请刷新重试！" in _messages(bad)
    assert client.get("/detail").status_code == 302  # still signed out
    good = client.post("/login", {**credentials, "cf-turnstile-response": "good-token", "next": "/token"})
    assert good.status_code == 302 and good["Location"] == "/token"
    assert turnstile_on.forms[-1] == {
        "secret": ["page-secret"],
        "response": ["good-token"],
        "remoteip": ["10.78.0.1"],
    }
    assert "Signed in as alice" in client.get("/token").content.decode()


def test_register_page_needs_turnstile(turnstile_on: FakeTurnstile) -> None:
    client = Client(REMOTE_ADDR="10.78.0.2")
    assert "cf-turnstile" in client.get("/register").content.decode()
    fields = {"username": "erin", "password": "erin-password", "password2": "erin-password"}
    refused = client.post("/register", fields)
    assert "Complete the Turnstile check first" in _messages(refused)
    refused = client.post("/register", {**fields, "cf-turnstile-response": "bad-token"})
    assert "The Turnstile check failed: reload the page and try again" in _messages(refused)
    assert not User.objects.filter(username="erin").exists()
    done = client.post("/register", {**fields, "cf-turnstile-response": "good-token"})
    assert done.status_code == 302 and User.objects.filter(username="erin").exists()


def test_unreachable_turnstile_is_a_refusal_on_the_page(alice: User, turnstile_on, settings) -> None:
    settings.TURNSTILE_VERIFY_URL = "http://127.0.0.1:9/siteverify"  # nothing listens there
    answer = Client(REMOTE_ADDR="10.78.0.3").post(
        "/login", {"username": "alice", "password": "alice-password", "cf-turnstile-response": "good-token"}
    )
    assert answer.status_code == 200
    assert "The Turnstile check could not be made: try again later" in _messages(answer)
