"""Redemption codes in batches; logs and tasks stay read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from billing.models import REDEMPTION_USED, Log, Redemption
from tests.admin.conftest import admin_url

pytestmark = pytest.mark.django_db

CREATE_URL = "/admin/billing/redemption/create-codes/"


def test_batch_create_codes(root_client: Client, root_user) -> None:
    assert root_client.get(CREATE_URL).status_code == 200
    response = root_client.post(CREATE_URL, {"name": "promo", "count": 5, "quota": 250000})
    assert response.status_code == 200
    codes = Redemption.objects.filter(name="promo")
    assert codes.count() == 5
    assert {c.quota for c in codes} == {250000} and {c.user_id for c in codes} == {root_user.pk}
    html = response.content.decode()
    for code in codes:
        assert len(code.key) == 32 and code.key in html


def test_create_codes_validates(admin_client_: Client) -> None:
    response = admin_client_.post(CREATE_URL, {"name": "", "count": 101, "quota": 1})
    assert response.status_code == 200
    assert not Redemption.objects.exists()


def test_create_codes_link_on_changelist(root_client: Client) -> None:
    assert CREATE_URL.encode() in root_client.get(admin_url(Redemption, "changelist")).content


def test_common_user_cannot_create_codes(alice_client: Client) -> None:
    response = alice_client.post(CREATE_URL, {"name": "x", "count": 1, "quota": 1})
    assert response.status_code == 302
    assert not Redemption.objects.exists()


def test_redeemed_code_is_frozen(root_client: Client) -> None:
    code = Redemption.objects.create(key="b" * 32, name="used", quota=10, status=REDEMPTION_USED)
    root_client.post(admin_url(Redemption, "change", code.pk), {"name": "x", "quota": 99, "status": 1})
    code.refresh_from_db()
    assert (code.name, code.quota, code.status) == ("used", 10, REDEMPTION_USED)


def test_logs_are_read_only(root_client: Client, console_rows: dict) -> None:
    log = console_rows["log"]
    assert root_client.get(admin_url(Log, "add")).status_code == 403
    root_client.post(admin_url(Log, "change", log.pk), {"quota": 1})
    log.refresh_from_db()
    assert log.quota == 1234
