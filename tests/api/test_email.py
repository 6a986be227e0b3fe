"""Email verification and password reset (pytest-django swaps the SMTP backend for locmem)."""

from __future__ import annotations

import re

from django.core import mail
from rest_framework.test import APIClient

from accounts.models import User
from newapi_site.options import update_option
from tests.api_client import Api


def _smtp() -> None:
    update_option("SMTPServer", "smtp.example.com")
    update_option("SMTPAccount", "noreply@example.com")


def test_verification_needs_smtp(db):
    body = Api().get("/api/verification", {"email": "x@example.com"})
    assert body["success"] is False


def test_register_with_email_code(db):
    _smtp()
    update_option("EmailVerificationEnabled", "true")
    anon = Api()
    assert anon.get("/api/verification", {"email": "dave@example.com"})["success"]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == ["dave@example.com"]
    code = re.search(r"<strong>(\w+)</strong>", mail.outbox[0].body).group(1)
    bad = anon.post("/api/user/register", {"username": "dave", "password": "password1",
                                           "email": "dave@example.com", "verification_code": "000000"})
    assert bad["success"] is False
    ok = anon.post("/api/user/register", {"username": "dave", "password": "password1",
                                          "email": "dave@example.com", "verification_code": code})
    assert ok["success"], ok
    assert User.objects.get(username="dave").email == "dave@example.com"
    # the address is now taken
    assert anon.get("/api/verification", {"email": "dave@example.com"})["success"] is False


def test_domain_whitelist_and_alias_restriction(db):
    _smtp()
    update_option("EmailDomainRestrictionEnabled", "true")
    update_option("EmailAliasRestrictionEnabled", "true")
    assert Api().get("/api/verification", {"email": "x@evil.test"})["success"] is False
    assert Api().get("/api/verification", {"email": "a+b@gmail.com"})["success"] is False
    assert Api().get("/api/verification", {"email": "ab@gmail.com"})["success"] is True


def test_password_reset(alice):
    _smtp()
    User.objects.filter(pk=alice.pk).update(email="alice@example.com")
    anon = Api()
    assert anon.get("/api/reset_password", {"email": "nobody@example.com"})["success"] is False
    assert anon.get("/api/reset_password", {"email": "alice@example.com"})["success"]
    token = re.search(r"token=(\w{32})", mail.outbox[0].body).group(1)
    assert anon.post("/api/user/reset", {"email": "alice@example.com", "token": "f" * 32})["success"] is False
    body = anon.post("/api/user/reset", {"email": "alice@example.com", "token": token})
    new_password = body["data"]
    assert len(new_password) == 12
    login = APIClient().post("/api/user/login", {"username": "alice", "password": new_password}, format="json")
    assert login.json()["success"]
    # the token is single-use
    assert anon.post("/api/user/reset", {"email": "alice@example.com", "token": token})["success"] is False


def test_email_bind(as_alice, alice):
    _smtp()
    assert Api().get("/api/verification", {"email": "new@example.com"})["success"]
    code = re.search(r"<strong>(\w+)</strong>", mail.outbox[0].body).group(1)
    assert as_alice.get("/api/oauth/email/bind", {"email": "new@example.com", "code": code})["success"]
    alice.refresh_from_db()
    assert alice.email == "new@example.com"
