"""Email verification codes and password-reset tokens, sent over the SMTP* options.

Codes live in Redis when configured (so every node sees them), else in process memory; 10 minutes.
"""

from __future__ import annotations

import hmac
import re
import secrets
import threading
import time
import uuid
from typing import cast
from urllib.parse import quote

from django.conf import settings
from django.core.mail import EmailMessage, get_connection

from accounts.models import User
from newapi_site import redis as r
from newapi_site.api.base import ApiError
from newapi_site.options import options

CODE_TTL = 600
# 40 random bits: a 6-hex-digit code (24 bits) falls to a patient guesser within its 10 minutes.
CODE_BYTES = 5
# Compare and delete in one step, so two requests racing with the same code cannot both use it.
_TAKE_IF_EQUAL = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_memory: dict[str, tuple[str, float]] = {}
_lock = threading.Lock()
DJANGO_SMTP_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
SMTP_BACKEND = "accounts.services.smtp_backend.OpportunisticTLSBackend"
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _store(purpose: str, email: str, code: str) -> None:
    if r.redis_enabled():
        r.sync_redis().set(r.key("verify", purpose, email), code, ex=CODE_TTL)
        return
    with _lock:
        _memory[purpose + email] = (code, time.time() + CODE_TTL)


def check_code(email: str, code: str, purpose: str, *, consume: bool = False) -> bool:
    if not email or not code:
        return False
    if r.redis_enabled():
        key = r.key("verify", purpose, email)
        if consume:
            return bool(r.sync_redis().eval(_TAKE_IF_EQUAL, 1, key, code))
        stored = cast("bytes | None", r.sync_redis().get(key))  # the client does not decode
        return stored is not None and hmac.compare_digest(stored, code.encode())
    with _lock:
        entry = _memory.get(purpose + email)
        ok = (
            entry is not None
            and entry[1] > time.time()
            and hmac.compare_digest(entry[0].encode(), code.encode())
        )
        if ok and consume:
            _memory.pop(purpose + email, None)
        return ok


def send_mail(subject: str, to: str, html: str) -> None:
    server = options.get("SMTPServer")
    account = options.get("SMTPAccount")
    if not server or not account:
        raise ApiError("SMTP 服务器未配置")
    port = options.get_int("SMTPPort", 587)
    implicit_tls = port == 465 or options.get_bool("SMTPSSLEnabled")
    # SMTP by default, with STARTTLS when the server offers it; the test runner swaps in locmem.
    backend = SMTP_BACKEND if settings.EMAIL_BACKEND == DJANGO_SMTP_BACKEND else None
    connection = get_connection(
        backend,
        host=server,
        port=port,
        username=account,
        password=options.get("SMTPToken"),
        use_ssl=implicit_tls,
        use_tls=not implicit_tls,
        timeout=20,
    )
    sender = options.get("SMTPFrom") or account
    message = EmailMessage(
        subject, html, f"{options.get('SystemName')} <{sender}>", [to], connection=connection
    )
    message.content_subtype = "html"
    message.send()


def _check_address(email: str) -> None:
    if not _EMAIL_RE.match(email) or len(email) > 50:
        raise ApiError("无效的参数")
    local, _, domain = email.partition("@")
    if options.get_bool("EmailDomainRestrictionEnabled"):
        allowed = [d.strip() for d in options.get("EmailDomainWhitelist").split(",") if d.strip()]
        if domain.lower() not in allowed:
            raise ApiError("管理员启用了邮箱域名白名单，您的邮箱地址的域名不在白名单中")
    if options.get_bool("EmailAliasRestrictionEnabled") and ("+" in local or "." in local):
        raise ApiError("管理员已启用邮箱地址别名限制，您的邮箱地址由于包含特殊符号而被拒绝。")


def send_verification_code(email: str) -> None:
    email = email.strip()
    _check_address(email)
    if User.objects.filter(email=email).exists():
        raise ApiError("邮箱地址已被占用")
    code = secrets.token_hex(CODE_BYTES)
    _store("v", email, code)
    name = options.get("SystemName")
    send_mail(
        f"{name}邮箱验证邮件",
        email,
        f"<p>您好，你正在进行{name}邮箱验证。</p><p>您的验证码为: <strong>{code}</strong></p>"
        f"<p>验证码 10 分钟内有效，如果不是本人操作，请忽略。</p>",
    )


def send_password_reset(email: str) -> None:
    email = email.strip()
    if not email or not User.live.filter(email=email).exists():
        raise ApiError("该邮箱地址未注册")
    token = uuid.uuid4().hex
    _store("r", email, token)
    address = options.get("ServerAddress") or "http://localhost:3000"
    link = f"{address}/user/reset?email={quote(email)}&token={token}"
    name = options.get("SystemName")
    send_mail(
        f"{name}密码重置",
        email,
        f"<p>您好，你正在进行{name}密码重置。</p><p>点击 <a href='{link}'>此处</a> 进行密码重置。</p>"
        f"<p>如果链接无法点击，请尝试点击下面的链接或将其复制到浏览器中打开：<br> {link} </p>"
        f"<p>重置链接 10 分钟内有效，如果不是本人操作，请忽略。</p>",
    )


def reset_password(email: str, token: str) -> str:
    if not check_code(email, token, "r", consume=True):
        raise ApiError("重置链接非法或已过期")
    user = User.live.filter(email=email).first()
    if user is None:
        raise ApiError("该邮箱地址未注册")
    password = uuid.uuid4().hex[:12]
    user.set_password(password)
    # Whoever made the reset necessary may hold a session or the access token: both stop working.
    user.access_token = uuid.uuid4().hex
    user.save(update_fields=["password", "access_token"])
    return password


def bind_email(user: User, email: str, code: str) -> None:
    if not check_code(email, code, "v", consume=True):
        raise ApiError("验证码错误或已过期")
    user.email = email
    user.save(update_fields=["email"])
