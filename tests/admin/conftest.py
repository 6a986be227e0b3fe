"""Seed one row of every console model, and logged-in clients for root, an admin and alice."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import Option, Token, User
from billing.models import LOG_CONSUME, Log, QuotaData, Redemption, TopUp
from relay.models import Channel
from tasks.models import Midjourney, Task
from tests.conftest import make_channel, make_token


@pytest.fixture
def root_client(root_user: User) -> Client:
    client = Client()
    client.force_login(root_user)
    return client


@pytest.fixture
def admin_client_(admin_user: User) -> Client:
    client = Client()
    client.force_login(admin_user)
    return client


@pytest.fixture
def alice_client(alice: User) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def console_rows(alice: User) -> dict[str, object]:
    token = make_token(alice)
    channel = make_channel(
        "http://127.0.0.1:9",
        key="sk-upstream-secret-0123456789abcdef",
        name="primary",
        models="gpt-4o-mini,gpt-4o",
        group="default,vip",
    )
    return {
        "user": alice,
        "token": token,
        "channel": channel,
        "option": Option.objects.create(key="QuotaPerUnit", value="500000"),
        "log": Log.objects.create(
            user_id=alice.pk,
            username="alice",
            type=LOG_CONSUME,
            token_name=token.name,
            model_name="gpt-4o-mini",
            quota=1234,
            prompt_tokens=10,
            completion_tokens=20,
            channel_id=channel.pk,
            content="model price",
        ),
        "quotadata": QuotaData.objects.create(
            user_id=alice.pk,
            username="alice",
            model_name="gpt-4o-mini",
            created_at=1_700_000_000,
            count=1,
            quota=5,
        ),
        "redemption": Redemption.objects.create(key="a" * 32, name="welcome", quota=1000),
        "topup": TopUp.objects.create(user_id=alice.pk, amount=10, money=10.0, trade_no="T1"),
        "midjourney": Midjourney.objects.create(
            user_id=alice.pk, action="IMAGINE", mj_id="mj-1", status="SUCCESS", submit_time=1_700_000_000_000
        ),
        "task": Task.objects.create(
            user_id=alice.pk, platform="suno", action="MUSIC", status="SUCCESS", task_id="t-1"
        ),
    }


def admin_url(model: type, view: str, *args: object) -> str:
    from django.urls import reverse

    opts = model._meta
    return reverse(f"admin:{opts.app_label}_{opts.model_name}_{view}", args=args)


ALL_MODELS = {
    "user": User,
    "token": Token,
    "channel": Channel,
    "option": Option,
    "log": Log,
    "quotadata": QuotaData,
    "redemption": Redemption,
    "topup": TopUp,
    "midjourney": Midjourney,
    "task": Task,
}
