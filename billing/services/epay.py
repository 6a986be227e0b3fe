"""Online top-up through an EPay gateway (management.md §3.9).

Unlike New API, the notify handler checks the merchant id and the paid amount, and marks the order
paid with one conditional UPDATE, so duplicate notifications on any number of nodes credit once.
"""

from __future__ import annotations

import hashlib
import secrets
import string
import time
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db import transaction

from accounts.models import User
from billing.models import LOG_TOPUP, TopUp
from billing.services.credit import credit_user
from billing.services.logs import record_log
from newapi_site.api.base import ApiError
from newapi_site.money import log_quota
from newapi_site.options import options


def epay_sign(params: dict[str, Any], key: str) -> str:
    fields = {k: str(v) for k, v in params.items() if k not in ("sign", "sign_type") and v not in (None, "")}
    joined = "&".join(f"{k}={fields[k]}" for k in sorted(fields))
    return hashlib.md5((joined + key).encode()).hexdigest()


def online_topup_enabled() -> bool:
    return bool(options.get("PayAddress") and options.get("EpayId") and options.get("EpayKey"))


def _per_unit() -> int:
    return options.get_int("QuotaPerUnit", 500000) or 500000


def _units(amount: int) -> int:
    """Units bought: dollars with DisplayInCurrencyEnabled, else raw quota converted to dollars."""
    return amount if options.get_bool("DisplayInCurrencyEnabled") else amount // _per_unit()


def _group_ratio(group: str) -> Decimal:
    ratio = (options.get_json("TopupGroupRatio", {}) or {}).get(group) or 1
    return Decimal(str(ratio))


def price_of(user: User, amount: int) -> Decimal:
    if amount < options.get_int("MinTopUp", 1) * (
        1 if options.get_bool("DisplayInCurrencyEnabled") else _per_unit()
    ):
        raise ApiError(f"充值数量不能小于 {options.get_int('MinTopUp', 1)}")
    dollars = (
        Decimal(amount) if options.get_bool("DisplayInCurrencyEnabled") else Decimal(amount) / _per_unit()
    )
    money = (dollars * Decimal(str(options.get_float("Price", 7.3))) * _group_ratio(user.group)).quantize(
        Decimal("0.01"), rounding=ROUND_HALF_UP
    )
    if money < Decimal("0.01"):
        raise ApiError("充值金额过低")
    return money


def create_order(
    user: User, amount: int, payment_method: str, return_base: str
) -> tuple[dict[str, str], str]:
    if not online_topup_enabled():
        raise ApiError("当前管理员未配置支付信息")
    money = price_of(user, amount)
    rand = "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(6))
    trade_no = f"USR{user.pk}NO{rand}{int(time.time())}"
    server = (options.get("ServerAddress") or return_base).rstrip("/")
    notify_base = (options.get("CustomCallbackAddress") or server).rstrip("/")
    params = {
        "pid": options.get("EpayId"),
        "type": "alipay" if payment_method == "zfb" else "wxpay",
        "out_trade_no": trade_no,
        "notify_url": f"{notify_base}/api/user/epay/notify",
        "return_url": f"{server}/log",
        "name": f"TUC{amount}",
        "money": f"{money:.2f}",
        "device": "pc",
    }
    params["sign"] = epay_sign(params, options.get("EpayKey"))
    params["sign_type"] = "MD5"
    TopUp.objects.create(user_id=user.pk, amount=_units(amount), money=float(money), trade_no=trade_no)
    return params, options.get("PayAddress").rstrip("/") + "/submit.php"


def handle_notify(params: dict[str, str]) -> bool:
    """True when the notification is authentic (the gateway expects "success" then)."""
    if not online_topup_enabled():
        return False
    if not params.get("sign") or epay_sign(params, options.get("EpayKey")) != params["sign"]:
        return False
    if params.get("pid") != options.get("EpayId"):
        return False
    if params.get("trade_status") != "TRADE_SUCCESS":
        return True
    order = TopUp.objects.filter(trade_no=params.get("out_trade_no", "")).first()
    if order is None:
        return True
    try:
        paid = Decimal(params.get("money") or "0")
    except ArithmeticError:
        return False
    if paid + Decimal("0.001") < Decimal(str(order.money)):
        return False  # underpaid: never credit
    with transaction.atomic():
        if not TopUp.objects.filter(pk=order.pk, status="pending").update(status="success"):
            return True  # already credited by an earlier notification
        quota = order.amount * _per_unit()
        credit_user(order.user_id, quota)
    record_log(
        order.user_id,
        LOG_TOPUP,
        f"使用在线充值成功，充值金额: {log_quota(quota)}，支付金额：{order.money:.6f}",
    )
    return True
