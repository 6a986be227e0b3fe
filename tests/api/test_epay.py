"""EPay top-up: price preview, order, and a notify that credits exactly once and only when fully paid."""

from __future__ import annotations

from django.test import Client

from billing.models import Log, TopUp
from billing.services.epay import epay_sign
from newapi_site.options import update_option


def _configure() -> None:
    update_option("PayAddress", "https://pay.example.com")
    update_option("EpayId", "1001")
    update_option("EpayKey", "epay-secret")
    update_option("TopupGroupRatio", '{"default": 1, "vip": 2}')


def _notify(order: TopUp, money: str | None = None, **over) -> str:
    params = {"pid": "1001", "out_trade_no": order.trade_no, "trade_no": "gw-1", "type": "alipay",
              "name": "TUC10", "money": money or f"{order.money:.2f}", "trade_status": "TRADE_SUCCESS"}
    params.update(over)
    params["sign"] = epay_sign(params, "epay-secret")
    params["sign_type"] = "MD5"
    return Client().get("/api/user/epay/notify", params).content.decode()


def test_amount_preview(as_alice, as_bob, db):
    _configure()
    assert as_alice.post("/api/user/amount", {"amount": 10}) == {"message": "success", "data": "73.00"}
    assert as_bob.post("/api/user/amount", {"amount": 10}) == {"message": "success", "data": "146.00"}  # vip ×2
    assert as_alice.post("/api/user/amount", {"amount": 0})["message"] == "error"


def test_pay_requires_configuration(as_alice, db):
    assert as_alice.post("/api/user/pay", {"amount": 10, "payment_method": "zfb"})["message"] == "error"


def test_pay_and_notify_credit_once(as_alice, alice):
    _configure()
    body = as_alice.post("/api/user/pay", {"amount": 10, "payment_method": "zfb"})
    assert body["message"] == "success" and body["url"] == "https://pay.example.com/submit.php"
    params = body["data"]
    assert params["type"] == "alipay" and params["money"] == "73.00" and params["sign_type"] == "MD5"
    assert params["sign"] == epay_sign(params, "epay-secret")
    order = TopUp.objects.get(trade_no=params["out_trade_no"])
    assert (order.status, order.amount, order.user_id) == ("pending", 10, alice.pk)
    assert _notify(order, money="1.00") == "fail"  # underpaid
    assert _notify(order, pid="9999") == "fail"
    assert _notify(order) == "success"
    assert _notify(order) == "success"  # duplicate notification
    alice.refresh_from_db()
    assert alice.quota == 10_000_000 + 10 * 500_000
    order.refresh_from_db()
    assert order.status == "success"
    assert Log.objects.filter(user_id=alice.pk, type=1).count() == 1


def test_notify_bad_signature(alice, db):
    _configure()
    order = TopUp.objects.create(user_id=alice.pk, amount=1, money=7.3, trade_no="USR1NOabc1")
    resp = Client().get("/api/user/epay/notify", {"pid": "1001", "out_trade_no": order.trade_no, "money": "7.30",
                                                  "trade_status": "TRADE_SUCCESS", "sign": "0" * 32})
    assert resp.content == b"fail"
    order.refresh_from_db()
    assert order.status == "pending"
