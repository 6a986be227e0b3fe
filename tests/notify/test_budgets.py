"""Periodic token budgets: set and shown through /api/token/, spent through the ledger like any
limited token's quota, set back once per period (exactly once however many processes try)."""

from __future__ import annotations

import datetime as dt
import threading

import httpx
import pytest

from accounts.models import Token
from billing import budgets, counters
from tests.api_client import Api
from tests.conftest import live, make_channel, make_user, propagated, settle

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.django_db
def test_budget_set_shown_and_kept_by_edits_that_do_not_name_it(alice):
    api = Api(alice)
    refused = api.post("/api/token/", {"name": "b0", "budget_period": "day", "budget_quota": 0})
    assert refused["success"] is False
    assert api.post(
        "/api/token/", {"name": "b1", "budget_period": "week", "budget_quota": 5000, "unlimited_quota": True}
    )["success"]
    token = Token.objects.get(name="b1")
    assert (token.budget_period, token.budget_quota, token.remain_quota, token.unlimited_quota) == (
        "week",
        5000,
        5000,
        False,
    )
    listed = next(t for t in api.get("/api/token/")["data"] if t["id"] == token.pk)
    assert (listed["budget_period"], listed["budget_quota"]) == ("week", 5000)
    # New API's console edits without the budget fields: the budget stays
    edit = {"id": token.pk, "name": "b1", "remain_quota": 4000, "unlimited_quota": False, "expired_time": -1}
    assert api.put("/api/token/", edit)["data"]["budget_period"] == "week"
    token.refresh_from_db()
    assert (token.budget_period, token.budget_quota, token.remain_quota) == ("week", 5000, 4000)
    # a changed budget starts with all of it; clearing it leaves an ordinary limited token
    assert (
        api.put("/api/token/", {**edit, "budget_period": "month", "budget_quota": 9000})["data"][
            "remain_quota"
        ]
        == 9000
    )
    body = api.put("/api/token/", {**edit, "budget_period": "", "budget_quota": None})["data"]
    assert (body["budget_period"], body["budget_quota"], body["remain_quota"]) == ("", 0, 4000)


def test_period_keys():
    at = dt.datetime(2026, 12, 31, 23, 59, tzinfo=dt.UTC)
    assert budgets.period_key("day", at) == "20261231"
    assert budgets.period_key("week", at) == "2026W53"
    assert budgets.period_key("month", at) == "202612"


@live
def test_budget_is_spent_refused_and_reset_once_per_period(gateway, fake_upstream):
    make_channel(fake_upstream.base_url, key="budget")
    user = make_user("budgeted", quota=10_000_000)
    api = Api(user)
    assert api.post("/api/token/", {"name": "daily", "budget_period": "day", "budget_quota": 100})["success"]
    token = Token.objects.get(name="daily")
    propagated()
    headers = {"Authorization": f"Bearer sk-{token.key}"}
    today = dt.datetime.now(dt.UTC)
    assert budgets.reset_due(today) >= 1  # the first run claims the current period (it starts full)

    assert (
        httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers, timeout=30).status_code
        == 200
    )
    settle()
    token.refresh_from_db()
    spent = 100 - token.remain_quota
    assert spent > 0
    while token.remain_quota > 0:  # spend the day's budget
        r = httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers, timeout=30)
        settle()
        token.refresh_from_db()
        if r.status_code != 200:
            break
    refused = httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers, timeout=30)
    assert refused.status_code in (401, 403) and refused.json()["error"]["message"]
    left = token.remain_quota

    assert budgets.reset_due(today) == 0  # same period: nothing
    token.refresh_from_db()
    assert token.remain_quota == left

    tomorrow = today + dt.timedelta(days=1)
    assert budgets.reset_due(tomorrow) == 1
    token.refresh_from_db()
    assert token.remain_quota == 100
    assert (
        httpx.post(f"{gateway.v1}/chat/completions", json=BODY, headers=headers, timeout=30).status_code
        == 200
    )
    settle()
    token.refresh_from_db()
    assert token.remain_quota == 100 - spent  # charged exactly once, from the new budget
    budgets._claimed.clear()  # as another process would start
    assert budgets.reset_due(tomorrow) == 0
    token.refresh_from_db()
    assert token.remain_quota == 100 - spent


@live
def test_claim_once_across_threads():
    name = f"once-{dt.datetime.now().timestamp()}"
    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        from django.db import connection

        try:
            ok = counters.claim_once(name, 600)
            with lock:
                results.append(ok)
        finally:
            connection.close()

    threads = [threading.Thread(target=worker) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 1 and len(results) == 10


@pytest.mark.django_db
def test_token_page_sets_and_shows_a_budget(alice):
    from tests.console.test_pages import signed_in

    client = signed_in(alice)
    form = {"action": "create", "name": "paged", "remain_quota": "0", "expired_time": ""}
    client.post("/token", {**form, "budget_period": "month", "budget_quota": "7000"})
    token = Token.objects.get(user_id=alice.pk, name="paged")
    assert (token.budget_period, token.budget_quota, token.remain_quota, token.unlimited_quota) == (
        "month",
        7000,
        7000,
        False,
    )
    page = client.get(f"/token?edit={token.pk}").content.decode()
    assert 'value="month" selected' in page and 'name="budget_quota" value="7000"' in page
    client.post(
        "/token", {**form, "action": "update", "id": token.pk, "budget_period": "", "budget_quota": ""}
    )
    token.refresh_from_db()
    assert (token.budget_period, token.budget_quota) == (None, None)
