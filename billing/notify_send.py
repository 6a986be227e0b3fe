"""Delivering one notification (in the Celery worker): email over the SMTP options, or a webhook.

A webhook goes only to a public address (newapi_site/net_guard.py, redirects not followed), is
signed with the user's secret, and goes through the WorkerUrl proxy when the option is set.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import orjson

from accounts.models import User
from accounts.services.email import send_mail
from newapi_site import net_guard
from newapi_site.api.base import ApiError
from newapi_site.options import options

log = logging.getLogger("newapi.notify")
WEBHOOK_TIMEOUT = 5.0
MAX_REDIRECTS = 3


class Undeliverable(Exception):
    """A notification that cannot be delivered as configured: logged, not retried."""


def parse_setting(raw: str | None) -> dict[str, Any]:
    try:
        value = json.loads(raw or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def render(content: str, values: list[Any]) -> str:
    """Each `{{value}}` in turn takes the next value; placeholders past the values stay."""
    for value in values:
        if "{{value}}" not in content:
            break
        content = content.replace("{{value}}", str(value), 1)
    return content


def deliver(user_id: int, notice: dict[str, Any]) -> str:
    """Send `notice` ({type, title, content, values}) by the user's notify_type; what was done."""
    user = User.objects.filter(pk=user_id).first()
    if user is None:
        return "no user"
    setting = parse_setting(user.setting)
    if setting.get("notify_type") == "webhook":
        url = str(setting.get("webhook_url") or "")
        if not url:
            return "no webhook url"
        send_webhook(url, str(setting.get("webhook_secret") or ""), notice)
        return "webhook"
    to = str(setting.get("notification_email") or user.email or "")
    if not to:
        return "no email address"
    try:
        send_mail(notice["title"], to, render(notice["content"], notice.get("values") or []))
    except ApiError as exc:  # SMTP not configured
        raise Undeliverable(exc.message) from None
    return "email"


def webhook_body(notice: dict[str, Any], timestamp: int) -> bytes:
    values = notice.get("values") or []
    payload: dict[str, Any] = {
        "type": notice["type"],
        "title": notice["title"],
        "content": render(notice["content"], values),
    }
    if values:
        payload["values"] = values
    payload["timestamp"] = timestamp
    return orjson.dumps(payload)


def sign(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def send_webhook(url: str, secret: str, notice: dict[str, Any]) -> None:
    body = webhook_body(notice, int(notice.get("timestamp") or 0))
    headers = {"Content-Type": "application/json"}
    if secret:
        headers["X-Webhook-Signature"] = sign(secret, body)
    worker = options.get("WorkerUrl")
    if worker:
        if urlsplit(url).scheme != "https":
            raise Undeliverable("webhooks through the worker must use https")
        headers_for_worker = dict(headers)
        if secret:
            headers_for_worker["Authorization"] = f"Bearer {secret}"
        envelope = {
            "url": url,
            "key": options.get("WorkerValidKey"),
            "method": "POST",
            "headers": headers_for_worker,
            "body": orjson.loads(body),
        }
        _post(worker.rstrip("/") + "/", orjson.dumps(envelope), {"Content-Type": "application/json"})
        return
    _post(url, body, headers)


def _post(url: str, body: bytes, headers: dict[str, str]) -> None:
    """POST to the checked address itself; a 307/308 redirect is followed only after its target
    passes the same check (other redirects are answers, not deliveries)."""
    with httpx.Client(follow_redirects=False, timeout=WEBHOOK_TIMEOUT, trust_env=False) as client:
        for _hop in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise Undeliverable("webhook URL must be http or https")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            try:
                ip = net_guard.resolve_public_sync(parts.hostname, port)
            except ValueError as exc:
                raise Undeliverable(f"webhook refused: {exc}") from None
            netloc = (f"[{ip}]" if ":" in ip else ip) + f":{port}"
            target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            request = client.build_request(
                "POST",
                target,
                content=body,
                headers={**headers, "Host": parts.netloc.rsplit("@", 1)[-1]},
                extensions={"sni_hostname": parts.hostname},
            )
            resp = client.send(request)
            if resp.status_code in (307, 308) and resp.headers.get("location"):
                url = urljoin(url, resp.headers["location"])
                continue
            if not 200 <= resp.status_code < 300:
                raise RuntimeError(f"webhook answered {resp.status_code}")
            return
    raise RuntimeError("webhook: too many redirects")
