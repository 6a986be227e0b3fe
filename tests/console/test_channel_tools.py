"""The channel editor's fetch-models button: a stored key goes only to the stored address (unless root)."""

from __future__ import annotations

import pytest
from django.test import Client

from newapi_site.roles import ROLE_ADMIN, ROLE_ROOT
from tests.conftest import make_channel, make_user

pytestmark = pytest.mark.django_db
ELSEWHERE = "http://127.0.0.1:9"  # nothing listens: a request sent there fails


def signed_in(role: int, name: str) -> Client:
    client = Client()
    client.force_login(make_user(name, role=role))
    return client


def test_an_admin_cannot_send_a_stored_key_elsewhere(fake_upstream) -> None:
    channel = make_channel(fake_upstream.base_url, key="stored-secret")
    admin = signed_in(ROLE_ADMIN, "plainadmin")
    answer = admin.post("/admin-channel/models", {"id": channel.pk, "type": 1, "base_url": ELSEWHERE})
    assert answer.json() == {"success": True, "data": ["gpt-4o-mini"]}
    assert fake_upstream.requests_for("stored-secret")  # asked at the stored address
    root = signed_in(ROLE_ROOT, "rootfetch")
    refused = root.post("/admin-channel/models", {"id": channel.pk, "type": 1, "base_url": ELSEWHERE})
    assert refused.status_code == 502 and refused.json()["success"] is False


def test_the_buttons_need_an_admin_session_and_csrf(fake_upstream) -> None:
    channel = make_channel(fake_upstream.base_url, key="csrf-secret")
    assert Client().post("/admin-channel/models", {"id": channel.pk}).status_code == 403
    assert Client().post(f"/admin-channel/{channel.pk}/test").status_code == 403
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(make_user("csrfroot", role=ROLE_ROOT))
    assert strict.post(f"/admin-channel/{channel.pk}/test").status_code == 403
    assert make_user("commoner") and Client().get("/admin-channel/models").status_code == 405
