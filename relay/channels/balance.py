"""Channel balance queries.

Each supported provider has one small fetcher returning the remaining balance. The URL is built on
the channel's base URL when it has one (so self-hosted mirrors and test fakes work), else on the
provider's well-known address. Success stores `balance` and `balance_updated_time`.

The bulk refresh (GET /api/channel/update_balance, or every CHANNEL_UPDATE_FREQUENCY minutes)
covers enabled channels and disables those whose balance is ≤ 0 with the reason "余额不足".
Unlike New API it leaves channels with auto_ban off alone: that flag is the admin's "never
disable this one automatically".
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from django.conf import settings

from relay.channels.multi_key import parse_info
from relay.models import CHANNEL_ENABLED, Channel
from relay.upstream import proxies

log = logging.getLogger("newapi.relay")
TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class BalanceError(Exception):
    pass


@dataclass(slots=True)
class BalanceResult:
    channel_id: int
    success: bool
    message: str
    balance: float = 0.0
    disabled: bool = False


def _base(channel: Channel, default: str) -> str:
    return ((channel.base_url or "").strip() or default).rstrip("/")


def _get_json(client: httpx.Client, url: str, headers: dict[str, str]) -> dict:
    try:
        resp = client.get(url, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as exc:
        raise BalanceError(f"request failed: {type(exc).__name__}") from None
    if resp.status_code != 200:
        raise BalanceError(f"status code: {resp.status_code}")
    try:
        data = resp.json()
    except ValueError:
        raise BalanceError("invalid JSON in the balance answer") from None
    if not isinstance(data, dict):
        raise BalanceError("invalid JSON in the balance answer")
    return data


def _bearer(channel: Channel) -> dict[str, str]:
    return {"Authorization": f"Bearer {channel.key.strip()}"}


def _number(value: object, what: str) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise BalanceError(f"no {what} in the balance answer") from None


def openai_balance(client: httpx.Client, channel: Channel) -> float:
    base = _base(channel, "https://api.openai.com")
    if base.endswith("/v1"):
        base = base[:-3]
    sub = _get_json(client, f"{base}/v1/dashboard/billing/subscription", _bearer(channel))
    today = dt.date.today()
    start = today.replace(day=1) if sub.get("has_payment_method") else today - dt.timedelta(days=100)
    usage = _get_json(
        client,
        f"{base}/v1/dashboard/billing/usage?start_date={start:%Y-%m-%d}&end_date={today:%Y-%m-%d}",
        _bearer(channel),
    )
    return (
        _number(sub.get("hard_limit_usd"), "hard_limit_usd")
        - _number(usage.get("total_usage") or 0, "total_usage") / 100
    )


def aiproxy_balance(client: httpx.Client, channel: Channel) -> float:
    base = _base(channel, "https://aiproxy.io")
    data = _get_json(client, f"{base}/api/report/getUserOverview", {"Api-Key": channel.key.strip()})
    if not data.get("success"):
        raise BalanceError(f"code: {data.get('error_code')}, message: {data.get('message')}")
    return _number((data.get("data") or {}).get("totalPoints"), "totalPoints")


def credit_grants(field: str, default_base: str) -> Callable[[httpx.Client, Channel], float]:
    def fetch(client: httpx.Client, channel: Channel) -> float:
        data = _get_json(
            client, f"{_base(channel, default_base)}/dashboard/billing/credit_grants", _bearer(channel)
        )
        return _number(data.get(field), field)

    return fetch


def siliconflow_balance(client: httpx.Client, channel: Channel) -> float:
    data = _get_json(client, f"{_base(channel, 'https://api.siliconflow.cn')}/v1/user/info", _bearer(channel))
    if data.get("code") != 20000:
        raise BalanceError(f"code: {data.get('code')}, message: {data.get('message')}")
    return _number((data.get("data") or {}).get("totalBalance"), "totalBalance")


def deepseek_balance(client: httpx.Client, channel: Channel) -> float:
    data = _get_json(client, f"{_base(channel, 'https://api.deepseek.com')}/user/balance", _bearer(channel))
    for info in data.get("balance_infos") or []:
        if isinstance(info, dict) and info.get("currency") == "CNY":
            return _number(info.get("total_balance"), "total_balance")
    raise BalanceError("no CNY balance in the answer")


def openrouter_balance(client: httpx.Client, channel: Channel) -> float:
    data = _get_json(client, f"{_base(channel, 'https://openrouter.ai/api')}/v1/credits", _bearer(channel))
    credits = data.get("data") or {}
    return _number(credits.get("total_credits"), "total_credits") - _number(
        credits.get("total_usage") or 0, "total_usage"
    )


FETCHERS: dict[int, Callable[[httpx.Client, Channel], float]] = {
    1: openai_balance,
    8: openai_balance,
    10: aiproxy_balance,
    12: credit_grants("total_remaining", "https://api.api2gpt.com"),
    13: credit_grants("total_available", "https://api.aigc2d.com"),
    20: openrouter_balance,
    40: siliconflow_balance,
    43: deepseek_balance,
}


def fetch_balance(channel: Channel, client: httpx.Client | None = None) -> float:
    fetcher = FETCHERS.get(int(channel.type or 0))
    if fetcher is None:
        raise BalanceError("尚未实现 (balance query not supported for this channel type)")
    if parse_info(channel.channel_info)["is_multi_key"]:  # several accounts: no one balance
        raise BalanceError("多密钥渠道不支持余额查询 (a multi-key channel has no single balance)")
    if proxy := proxies.of_row(channel):  # the account is reached the way its requests are
        with httpx.Client(proxy=proxy, follow_redirects=False, trust_env=False) as through:
            return fetcher(through, channel)
    if client is not None:
        return fetcher(client, channel)
    with httpx.Client(follow_redirects=False) as own:
        return fetcher(own, channel)


def update_balance(channel: Channel, client: httpx.Client | None = None) -> BalanceResult:
    try:
        balance = fetch_balance(channel, client)
    except BalanceError as exc:
        return BalanceResult(channel.pk, False, str(exc))
    Channel.objects.filter(pk=channel.pk).update(balance=balance, balance_updated_time=int(time.time()))
    return BalanceResult(channel.pk, True, "", balance)


def update_all_balances() -> list[BalanceResult]:
    from relay.channels.health import disable_channel

    results = []
    with httpx.Client(follow_redirects=False) as client:
        for i, channel in enumerate(Channel.objects.filter(status=CHANNEL_ENABLED).order_by("id")):
            if i and settings.POLLING_INTERVAL:
                time.sleep(settings.POLLING_INTERVAL)
            result = update_balance(channel, client)
            if (
                result.success
                and result.balance <= 0
                and (channel.auto_ban if channel.auto_ban is not None else 1) == 1
            ):
                result.disabled = disable_channel(channel.pk, "余额不足 (balance exhausted)")
                if result.disabled:
                    log.warning("channel #%s disabled: balance %.4f", channel.pk, result.balance)
            results.append(result)
    return results
